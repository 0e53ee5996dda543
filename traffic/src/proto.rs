//! Application messages: DNS queries/responses, TLS hellos, HTTP requests/responses.

/// DNS record types used by the generators.
pub mod qtype {
    /// A.
    pub const A: u16 = 1;
    /// TXT.
    pub const TXT: u16 = 16;
    /// AAAA.
    pub const AAAA: u16 = 28;
}

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = label.as_bytes();
        let len = bytes.len().min(63);
        out.push(u8::try_from(len).unwrap_or(63));
        out.extend_from_slice(&bytes[..len]);
    }
    out.push(0);
}

/// A recursive DNS query for `name`.
#[must_use]
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    dns_name(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// A response to [`dns_query`] with one answer (`rdata` as the record's data) and a
/// compression pointer to the question name.
#[must_use]
pub fn dns_response(id: u16, name: &str, qtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(48 + name.len() + rdata.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    dns_name(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&[0xc0, 0x0c]);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
    m.extend_from_slice(&u16::try_from(rdata.len()).unwrap_or(0).to_be_bytes());
    m.extend_from_slice(rdata);
    m
}

fn u24(n: usize) -> [u8; 3] {
    let n = u32::try_from(n).unwrap_or(0);
    let b = n.to_be_bytes();
    [b[1], b[2], b[3]]
}

fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, 0x03, 0x03];
    r.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![kind];
    h.extend_from_slice(&u24(body.len()));
    h.extend_from_slice(body);
    h
}

fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut e = kind.to_be_bytes().to_vec();
    e.extend_from_slice(&u16::try_from(data.len()).unwrap_or(0).to_be_bytes());
    e.extend_from_slice(data);
    e
}

/// A TLS 1.2 ClientHello record with an SNI extension for `sni`, `random` as its random.
#[must_use]
pub fn tls_client_hello(sni: &str, random: [u8; 32]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&random);
    body.push(0); // session id
    let suites: [u16; 5] = [0xc02b, 0xc02f, 0xc030, 0x009c, 0x002f];
    body.extend_from_slice(&u16::try_from(suites.len() * 2).unwrap_or(0).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let name = sni.as_bytes();
    let mut sni_data = Vec::new();
    sni_data.extend_from_slice(&u16::try_from(name.len() + 3).unwrap_or(0).to_be_bytes());
    sni_data.push(0);
    sni_data.extend_from_slice(&u16::try_from(name.len()).unwrap_or(0).to_be_bytes());
    sni_data.extend_from_slice(name);
    let mut exts = extension(0x0000, &sni_data);
    exts.extend(extension(0x000a, &[0, 4, 0, 0x17, 0, 0x18])); // groups: secp256r1, secp384r1
    exts.extend(extension(0x000b, &[1, 0])); // point formats: uncompressed
    exts.extend(extension(0x000d, &[0, 4, 0x04, 0x01, 0x08, 0x04]));
    body.extend_from_slice(&u16::try_from(exts.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&exts);
    record(0x16, &handshake(1, &body))
}

/// A TLS 1.2 ServerHello (ECDHE-RSA-AES128-GCM-SHA256) plus ServerHelloDone.
#[must_use]
pub fn tls_server_hello(random: [u8; 32]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&random);
    body.push(0);
    body.extend_from_slice(&0xc02f_u16.to_be_bytes());
    body.push(0);
    let exts = extension(0xff01, &[0]);
    body.extend_from_slice(&u16::try_from(exts.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut msgs = handshake(2, &body);
    msgs.extend(handshake(14, &[]));
    record(0x16, &msgs)
}

/// An HTTP/1.1 request.
#[must_use]
pub fn http_request(method: &str, uri: &str, host: &str, user_agent: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {uri} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\nConnection: keep-alive\r\n"
    );
    if !body.is_empty() {
        r.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    r.push_str("\r\n");
    let mut out = r.into_bytes();
    out.extend_from_slice(body);
    out
}

/// An HTTP/1.1 response with a Content-Length body.
#[must_use]
pub fn http_response(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: nginx\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_query_layout() {
        let q = dns_query(0x1234, "a.bc", qtype::A);
        assert_eq!(
            q,
            [
                0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header
                1, b'a', 2, b'b', b'c', 0, // name
                0, 1, 0, 1, // A IN
            ]
        );
    }

    #[test]
    fn client_hello_lengths_are_consistent() {
        let h = tls_client_hello("example.org", [7; 32]);
        let record_len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        assert_eq!(record_len, h.len() - 5);
        let hs_len = (usize::from(h[6]) << 16) | (usize::from(h[7]) << 8) | usize::from(h[8]);
        assert_eq!(hs_len, h.len() - 9);
        assert!(h.windows(11).any(|w| w == b"example.org"));
    }
}
