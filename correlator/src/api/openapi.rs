//! The OpenAPI 3.1 document, generated from the handlers' and types' annotations (utoipa),
//! served at `/api/v1/openapi.json`, and a self-contained HTML page rendered from it at
//! `/api/v1/docs` (no scripts or assets from elsewhere: SOC networks are often offline).

use std::fmt::Write as _;

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The error body every failure answers.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`unauthorized`, `not_found`, `illegal_transition`, ...).
    pub code: String,
    /// Short message for a person.
    pub message: String,
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `tocsin token create` (`tcn_...`)."))
                    .build(),
            ),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tocsin responder API",
        description = "Alert ingest, incidents, tickets with SLAs and escalation, the agency directory, \
                       the audit log and webhook deliveries. Authenticate with `Authorization: Bearer TOKEN`. \
                       Objects outside the token's agency subtree answer 404 like objects that do not exist.",
    ),
    paths(
        super::alerts::post_alerts,
        super::sensor_stats::post_sensor_stats,
        super::incidents::list_incidents,
        super::incidents::get_incident,
        super::tickets::list_tickets,
        super::tickets::get_ticket,
        super::tickets::acknowledge,
        super::tickets::assign,
        super::tickets::comment,
        super::tickets::set_status,
        super::tickets::bulk_acknowledge,
        super::agencies::list_agencies,
        super::audit::list_audit,
        super::webhooks::list_deliveries,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Bearer),
    tags(
        (name = "alerts", description = "Sensors post alerts"),
        (name = "incidents", description = "Incidents grouped from alerts"),
        (name = "tickets", description = "The response lifecycle"),
        (name = "agencies", description = "The agency directory"),
        (name = "audit", description = "Who did what (admins)"),
        (name = "webhooks", description = "Webhook delivery log (admins)"),
    )
)]
pub struct ApiDoc;

/// The document as JSON.
#[must_use]
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(serde_json::Value::Null)
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Json<serde_json::Value> {
    Json(document())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the document as one HTML page.
#[must_use]
pub fn render_html(doc: &serde_json::Value) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let title = doc
        .pointer("/info/title")
        .and_then(|v| v.as_str())
        .unwrap_or("API");
    let desc = doc
        .pointer("/info/description")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         code,pre{{background:#f4f4f4;padding:.1rem .3rem}}h3{{margin-bottom:.2rem}}\
         .m{{display:inline-block;min-width:4rem;font-weight:bold}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}}</style></head><body>\
         <h1>{t}</h1><p>{d}</p><p>Machine-readable: <a href=\"/api/v1/openapi.json\">openapi.json</a></p>",
        t = esc(title),
        d = esc(desc)
    );
    if let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) {
        for (path, ops) in paths {
            let Some(ops) = ops.as_object() else { continue };
            for (method, op) in ops {
                let summary = op.get("summary").and_then(|v| v.as_str()).unwrap_or("");
                let description = op.get("description").and_then(|v| v.as_str()).unwrap_or("");
                let _ = write!(
                    h,
                    "<h3><span class=\"m\">{}</span><code>{}</code></h3><p>{}</p><p>{}</p>",
                    esc(&method.to_uppercase()),
                    esc(path),
                    esc(summary),
                    esc(description)
                );
                if let Some(params) = op.get("parameters").and_then(|p| p.as_array()) {
                    h.push_str("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>");
                    for p in params {
                        let _ = write!(
                            h,
                            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                            esc(p.get("name").and_then(|v| v.as_str()).unwrap_or("")),
                            esc(p.get("in").and_then(|v| v.as_str()).unwrap_or("")),
                            esc(p.get("description").and_then(|v| v.as_str()).unwrap_or(""))
                        );
                    }
                    h.push_str("</table>");
                }
                if let Some(body) = op
                    .pointer("/requestBody/content/application~1json/schema/$ref")
                    .and_then(|v| v.as_str())
                {
                    let _ = write!(
                        h,
                        "<p>Body: <code>{}</code></p>",
                        esc(body.rsplit('/').next().unwrap_or(body))
                    );
                }
                if let Some(resp) = op.get("responses").and_then(|r| r.as_object()) {
                    let codes: Vec<String> = resp.keys().map(|k| esc(k)).collect();
                    let _ = write!(h, "<p>Answers: {}</p>", codes.join(", "));
                }
            }
        }
    }
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(|s| s.as_object())
    {
        h.push_str("<h2>Schemas</h2>");
        for (name, schema) in schemas {
            let _ = write!(
                h,
                "<h3>{}</h3><table><tr><th>field</th><th>type</th><th>description</th></tr>",
                esc(name)
            );
            if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                for (field, p) in props {
                    let ty = p
                        .get("type")
                        .map(|t| t.to_string().replace('"', ""))
                        .or_else(|| {
                            p.get("$ref")
                                .and_then(|r| r.as_str())
                                .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
                        })
                        .unwrap_or_default();
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        esc(field),
                        esc(&ty),
                        esc(p.get("description").and_then(|v| v.as_str()).unwrap_or(""))
                    );
                }
            }
            h.push_str("</table>");
        }
    }
    h.push_str("</body></html>");
    h
}

/// `GET /api/v1/docs`.
pub async fn docs_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        render_html(&document()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_route_and_renders() {
        let doc = document();
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
            Some(true)
        );
        for (path, method) in [
            ("/api/v1/alerts", "post"),
            ("/api/v1/incidents", "get"),
            ("/api/v1/incidents/{id}", "get"),
            ("/api/v1/tickets", "get"),
            ("/api/v1/tickets/{id}", "get"),
            ("/api/v1/tickets/{id}/acknowledge", "post"),
            ("/api/v1/tickets/{id}/assign", "post"),
            ("/api/v1/tickets/{id}/comment", "post"),
            ("/api/v1/tickets/{id}/status", "post"),
            ("/api/v1/tickets/acknowledge", "post"),
            ("/api/v1/agencies", "get"),
            ("/api/v1/audit", "get"),
            ("/api/v1/webhooks/deliveries", "get"),
        ] {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing"
            );
        }
        assert!(doc["components"]["schemas"]["TicketItem"]["properties"]["due_at"].is_object());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let html = render_html(&doc);
        assert!(html.contains("/api/v1/tickets/{id}/acknowledge"));
        assert!(!html.contains("<script"));
    }
}
