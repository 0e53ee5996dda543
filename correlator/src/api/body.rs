//! JSON request bodies: read within the route's size limit, parsed strictly (unknown fields
//! are errors), every failure a JSON `4xx`: `413 body_too_large`, `400 bad_json` (syntax,
//! types, unknown or missing fields, with serde's line and column). Nothing is applied
//! before the whole body parsed.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A strictly parsed JSON body; an empty body parses as `T::default()` when `T` allows it
/// (see [`OptionalBody`]).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

fn read_error(rej: &axum::extract::rejection::BytesRejection) -> ApiError {
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {} bytes", super::MAX_JSON_BODY),
        )
    } else {
        ApiError::bad_request("bad_body", rej.body_text())
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("bad_json", format!("invalid JSON body: {e}")))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| read_error(&r))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("bad_json", "a JSON body is required"));
        }
        parse(&bytes).map(Self)
    }
}

/// Like [`JsonBody`], but an empty body is `T::default()` (for actions whose fields are all
/// optional, like acknowledge).
#[derive(Debug)]
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| read_error(&r))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse(&bytes).map(Self)
    }
}
