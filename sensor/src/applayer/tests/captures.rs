//! App-layer tests on real captures: suricata-verify tests and the real-pcap set. Expected
//! values come from tshark's dissection, Suricata 7.0.10's output on the same captures
//! (quoted in comments), or reading the bytes by hand.

use super::*;

#[test]
fn http_close_headers_completes_headers_at_close() {
    // Response: "HTTP/1.0 200 OK\nServer:ng1nx\r\n" then FIN, no empty line (tshark raw).
    let Some(flow) = one_flow("http-close-headers", "input.pcap") else {
        return;
    };
    let al = flow.run(&cfg());
    assert_eq!(al.proto(), AppProto::Http);
    let txs = http_txs(&al);
    assert_eq!(txs.len(), 1);
    let t = txs[0];
    assert_eq!(t.buffer(HttpBuffer::Method, ToServer), b("GET"));
    assert_eq!(t.buffer(HttpBuffer::Host, ToServer), b("100.64.0.200"));
    assert_eq!(
        t.buffer(HttpBuffer::UserAgent, ToServer),
        b("python-requests/2.21.0")
    );
    assert_eq!(
        t.buffer(HttpBuffer::Header, ToClient),
        b("Server: ng1nx\r\n")
    );
    assert_eq!(t.buffer(HttpBuffer::StatCode, ToClient), b("200"));
    assert_eq!(t.buffer(HttpBuffer::Protocol, ToClient), b("HTTP/1.0"));
    // Suricata 7.0.10 alert metadata for this flow:
    // {"hostname":"100.64.0.200","url":"/","http_user_agent":"python-requests/2.21.0",
    //  "http_method":"GET","protocol":"HTTP/1.1","status":200,"length":0}
    assert_eq!(
        TxRef::Http(t).eve(),
        serde_json::json!({"hostname":"100.64.0.200","url":"/","http_user_agent":"python-requests/2.21.0",
            "http_method":"GET","protocol":"HTTP/1.1","status":200,"length":0})
    );
}

#[test]
fn http_missing_protocol_parses_headers_and_body_only_response() {
    // Request line "GET /gen.php?generate=191636955/-394717567&hwid=-53127817" (no protocol)
    // followed by headers; the 60-byte response is not HTTP. Suricata: app_proto_tc "failed",
    // http_header_names contains "User-Agent", http "length": 60.
    let Some(flow) = one_flow("http-missing-protocol", "input.pcap") else {
        return;
    };
    let al = flow.run(&cfg());
    assert_eq!(al.proto(), AppProto::Http);
    assert_eq!(al.proto_for(ToServer), AppProto::Http);
    assert_eq!(al.proto_for(ToClient), AppProto::Failed);
    let t = http_txs(&al)[0];
    assert_eq!(t.buffer(HttpBuffer::Protocol, ToServer), None);
    assert_eq!(
        t.buffer(HttpBuffer::UriRaw, ToServer),
        b("/gen.php?generate=191636955/-394717567&hwid=-53127817")
    );
    let names = t.buffer(HttpBuffer::HeaderNames, ToServer).unwrap();
    assert!(memchr::memmem::find(names, b"\r\nUser-Agent\r\n").is_some());
    assert_eq!(t.body_len(ToClient), 60);
    assert_eq!(t.buffer(HttpBuffer::StatCode, ToClient), None);
    let eve = TxRef::Http(t).eve();
    assert_eq!(eve["length"], 60);
    assert!(eve.get("protocol").is_none());
    assert!(
        al.events()
            .iter()
            .any(|e| e.kind == AppEventKind::Http(http::HttpEvent::RequestLineMissingProtocol))
    );
}

#[test]
fn http_request_and_response_header_multibuffers() {
    // Fields from tshark's follow-stream of the capture.
    let Some(flow) = one_flow("http-request-header", "input.pcap") else {
        return;
    };
    let al = flow.run(&cfg());
    let t = http_txs(&al)[0];
    let req: Vec<&[u8]> = (0..)
        .map_while(|i| t.multi_buffer(HttpBuffer::RequestHeader, ToServer, i))
        .collect();
    assert_eq!(req.len(), 5);
    assert_eq!(req[3], b"Connection: close");
    assert!(req[4].starts_with(b"User-Agent: Mozilla/5.0 (Windows NT 6.0"));
    let resp: Vec<&[u8]> = (0..)
        .map_while(|i| t.multi_buffer(HttpBuffer::ResponseHeader, ToClient, i))
        .collect();
    assert_eq!(resp[0], b"Server: INetSim HTTP Server");
    assert_eq!(resp[4], b"Date: Fri, 27 Jan 2023 21:13:10 GMT");
    assert_eq!(
        t.buffer(HttpBuffer::ResponseBody, ToClient)
            .map(<[u8]>::len),
        Some(86)
    );
    assert_eq!(t.buffer(HttpBuffer::ContentType, ToClient), b("text/html"));
    assert_eq!(
        t.buffer(HttpBuffer::Server, ToClient),
        b("INetSim HTTP Server")
    );
    assert!(t.is_complete(ToServer) && t.is_complete(ToClient));
}

#[test]
fn http_request_header_key_field_is_69_bytes() {
    // suricata-verify expects `http.request_header; bsize:69; content:"Key: "; startswith`.
    let Some(flow) = one_flow("http-request-header-multi", "input.pcap") else {
        return;
    };
    let al = flow.run(&cfg());
    let t = http_txs(&al)[0];
    let key = (0..)
        .map_while(|i| t.multi_buffer(HttpBuffer::RequestHeader, ToServer, i))
        .find(|f| f.starts_with(b"Key: "))
        .unwrap();
    assert_eq!(key.len(), 69);
    assert_eq!(t.buffer(HttpBuffer::Connection, ToServer), b("Upgrade"));
    assert_eq!(t.buffer(HttpBuffer::Uri, ToServer), b("/s/ws"));
    assert_eq!(
        t.buffer(HttpBuffer::UserAgent, ToServer),
        b("Go-http-client/1.1")
    );
    // Host with a port: libhtp keeps the case and cuts the port.
    assert_eq!(t.buffer(HttpBuffer::Host, ToServer), b("foobar.com"));
    assert_eq!(t.buffer(HttpBuffer::HostRaw, ToServer), b("foobar.com:80"));
}

#[test]
fn http_empty_user_agent_is_an_empty_buffer() {
    // "User-Agent:\r\n" with no value, request split over four segments.
    let Some(flow) = one_flow("detect-bsize-0", "input.pcap") else {
        return;
    };
    let al = flow.run(&cfg());
    let t = http_txs(&al)[0];
    assert_eq!(t.buffer(HttpBuffer::UserAgent, ToServer), b(""));
    assert_eq!(t.buffer(HttpBuffer::Location, ToClient), b("/ui"));
    assert_eq!(
        t.buffer(HttpBuffer::StatMsg, ToClient),
        b("Temporary Redirect")
    );
    assert_eq!(
        t.buffer(HttpBuffer::ResponseBody, ToClient),
        b("<a href=\"/ui\">Temporary Redirect</a>.\n\n")
    );
}

#[test]
fn http_request_bodies() {
    // bug-4199-4: POST /exec_post.php with a 22-byte form body (tshark: Content-Length 22).
    if let Some(flow) = one_flow("bug-4199-4", "input.pcap") {
        let al = flow.run(&cfg());
        let t = http_txs(&al)[0];
        let body = t.buffer(HttpBuffer::RequestBody, ToServer).unwrap();
        assert_eq!(body.len(), 22);
        assert!(body.windows(6).any(|w| w.eq_ignore_ascii_case(b"id=cat")));
        assert_eq!(t.buffer(HttpBuffer::Uri, ToServer), b("/exec_post.php"));
        assert_eq!(t.buffer(HttpBuffer::FileData, ToServer), Some(body));
    }
    // http-urldecode-body (IPv6 and IPv4 flows): tshark shows the form body
    // "mail=test%40oisf.net"; url_decode is the rule engine's transform.
    if let Some(p) = sv_pcap("http-urldecode-body", "input.pcap") {
        let bodies: Vec<Vec<u8>> = flows(&p)
            .iter()
            .map(|f| f.run(&cfg()))
            .flat_map(|al| {
                http_txs(&al)
                    .iter()
                    .filter_map(|t| {
                        t.buffer(HttpBuffer::RequestBody, ToServer)
                            .map(<[u8]>::to_vec)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            bodies.contains(&b"mail=test%40oisf.net".to_vec()),
            "{bodies:?}"
        );
    }
    // http-post-file (loopback link type, IPv6): the 68-byte upload is the EICAR test file,
    // which Suricata matches with `flow:to_server; file_data`.
    if let Some(p) = sv_pcap("http-post-file", "input.pcap") {
        let eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
        let found = flows(&p).iter().map(|f| f.run(&cfg())).any(|al| {
            http_txs(&al)
                .iter()
                .any(|t| t.buffer(HttpBuffer::FileData, ToServer) == Some(&eicar[..]))
        });
        assert!(found);
    }
    // http-post-data-decompression: gzip-encoded POST body that contains "name" once decoded.
    if let Some(flow) = one_flow("http-post-data-decompression", "input.pcap") {
        let al = flow.run(&cfg());
        let t = http_txs(&al)[0];
        let body = t.buffer(HttpBuffer::RequestBody, ToServer).unwrap();
        assert!(memchr::memmem::find(body, b"name").is_some(), "{body:?}");
        let resp = t
            .buffer(HttpBuffer::ResponseBody, ToClient)
            .unwrap_or_default();
        assert!(memchr::memmem::find(resp, b"name").is_none());
    }
}

#[test]
fn http_response_headers_split_over_segments() {
    // Response headers arrive in four segments ("Server: custom", "Header1: first", ...).
    let Some(flow) = one_flow("prefilter-multibuf-multipkts", "input.pcap") else {
        return;
    };
    let al = flow.run(&cfg());
    let t = http_txs(&al)[0];
    let resp: Vec<&[u8]> = (0..)
        .map_while(|i| t.multi_buffer(HttpBuffer::ResponseHeader, ToClient, i))
        .collect();
    assert_eq!(
        resp,
        vec![
            &b"Server: custom"[..],
            b"Header1: first",
            b"Content-type: text",
            b"X-first: secret",
            b"Content-Length: 14"
        ]
    );
    assert_eq!(
        t.buffer(HttpBuffer::ResponseBody, ToClient),
        b("see you later!")
    );
}

#[test]
fn dns_queries_from_suricata_verify() {
    // Query names per tshark (`dns.qry.name`), responses are separate transactions.
    let cases: &[(&str, &[&str])] = &[
        ("detect-dotprefix-01", &["www.download.windowsupdate.com"]),
        (
            "detect-dotprefix-02",
            &["maps.google.co.uk", "maps.l.google.com"],
        ),
        ("test-bsize-values-2", &["google.com"]),
    ];
    for (test, names) in cases {
        let Some(p) = sv_pcap(test, "input.pcap") else {
            continue;
        };
        let mut seen = Vec::new();
        for f in flows(&p) {
            let al = f.run(&cfg());
            assert_eq!(al.proto(), AppProto::Dns, "{test}");
            for t in dns_txs(&al) {
                if t.is_request() {
                    assert_eq!(t.direction(), ToServer);
                    seen.extend(
                        (0..)
                            .map_while(|i| t.buffer(DnsBuffer::Query, i))
                            .map(|q| String::from_utf8_lossy(q).into_owned()),
                    );
                }
            }
        }
        let want: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(seen, want, "{test}");
    }
}

#[test]
fn dns_alert_objects_match_suricata() {
    // Suricata 7.0.10 on test-bsize-values-2 (alerts with metadata):
    // query:  {"version":2,"query":[{"type":"query","id":51968,"rrname":"google.com",
    //          "rrtype":"A","tx_id":0,"opcode":0}]}
    // answer: {"version":2,"answer":{"version":2,"type":"answer","id":51968,"flags":"8180",
    //          "qr":true,"rd":true,"ra":true,"opcode":0,"rrname":"google.com","rrtype":"A",
    //          "rcode":"NOERROR"}}  (tx_id 1)
    let Some(flow) = one_flow("test-bsize-values-2", "input.pcap") else {
        return;
    };
    let al = flow.run(&cfg());
    let txs: Vec<TxRef<'_>> = al.txs().collect();
    assert_eq!(txs.len(), 2);
    assert_eq!(
        txs[0].eve(),
        serde_json::json!({"version":2,"query":[{"type":"query","id":51968,"rrname":"google.com","rrtype":"A","tx_id":0,"opcode":0}]})
    );
    assert_eq!(txs[1].id(), 1);
    assert_eq!(
        txs[1].eve(),
        serde_json::json!({"version":2,"answer":{"version":2,"type":"answer","id":51968,"flags":"8180","qr":true,"rd":true,"ra":true,"opcode":0,"rrname":"google.com","rrtype":"A","rcode":"NOERROR"}})
    );
    let TxRef::Dns(ans) = txs[1] else { panic!() };
    assert_eq!(ans.message().answers.len(), 1);
    assert_eq!(
        ans.message().answers[0].rdata,
        dns::DnsRdata::A([172, 217, 0, 174])
    );
    assert!(!txs[1].inspect_direction(ToServer) && txs[1].inspect_direction(ToClient));
}

#[test]
fn tls_handshake_matches_suricata() {
    // Suricata 7.0.10 EVE tls record for this capture (ja3 enabled):
    // subject "C=US, ST=California, L=Mountain View, O=Google Inc, CN=www.google.com",
    // issuerdn "C=US, O=Google Inc, CN=Google Internet Authority G2",
    // serial "2B:A2:F5:3B:B5:85:83:75",
    // fingerprint "90:86:a4:3b:f5:cf:1b:2e:4e:f7:97:96:f9:de:ba:b9:66:35:86:3f",
    // sni "www.google.com", version "TLS 1.2", notbefore "2016-09-14T08:20:40",
    // notafter "2016-12-07T08:19:00", ja3 hash 39d8c2cad4b5f346d621cbcca5b6189b,
    // ja3s "771,49199,65281-0-16-11" / 673d9e3a3d636167965beda377536bd7.
    let Some(flow) = one_flow("tls/tls-fingerprint-alert", "input.pcap") else {
        return;
    };
    let al = flow.run(&cfg());
    assert_eq!(al.proto(), AppProto::Tls);
    let t = tls_tx(&al);
    assert_eq!(
        TxRef::Tls(t).eve(),
        serde_json::json!({
            "subject": "C=US, ST=California, L=Mountain View, O=Google Inc, CN=www.google.com",
            "issuerdn": "C=US, O=Google Inc, CN=Google Internet Authority G2",
            "serial": "2B:A2:F5:3B:B5:85:83:75",
            "fingerprint": "90:86:a4:3b:f5:cf:1b:2e:4e:f7:97:96:f9:de:ba:b9:66:35:86:3f",
            "sni": "www.google.com", "version": "TLS 1.2",
            "notbefore": "2016-09-14T08:20:40", "notafter": "2016-12-07T08:19:00",
            "ja3": {"hash": "39d8c2cad4b5f346d621cbcca5b6189b",
                    "string": "771,49195-49199-52393-52392-49162-49161-49171-49187-49191-49172-49160-49170-158-52394-51-50-103-57-56-107-22-19-156-47-60-53-61-10-5-4,0-65281-10-11-13172-16-13,23-24-25,0"},
            "ja3s": {"hash": "673d9e3a3d636167965beda377536bd7", "string": "771,49199,65281-0-16-11"}
        })
    );
    assert_eq!(
        t.buffer(TlsBuffer::CertFingerprint, 0),
        b("90:86:a4:3b:f5:cf:1b:2e:4e:f7:97:96:f9:de:ba:b9:66:35:86:3f")
    );
    assert!(t.certs().len() >= 2, "chain of {}", t.certs().len());
    assert!(t.buffer(TlsBuffer::Certs, 1).is_some());
    assert_eq!(t.version(), 0x0303);
    assert_eq!(t.progress(ToClient), tls::progress::CLOSED);
}

#[test]
fn tls_names_with_nul_bytes_and_self_signed() {
    // suricata-verify: subject "C=US, ST=WA, L=Redmond, O=Microsoft Corporat\0on, OU=Microsoft
    // Corporation, CN=go.microsoft.com"; issuer "C=US, O=Microsoft Corporation, CN=Microsoft
    // RSA TL\0 CA 01".
    if let Some(flow) = one_flow("tls/tls-subject-zero", "input.pcap") {
        let al = flow.run(&cfg());
        let t = tls_tx(&al);
        assert_eq!(
            t.buffer(TlsBuffer::CertSubject, 0),
            Some(&b"C=US, ST=WA, L=Redmond, O=Microsoft Corporat\0on, OU=Microsoft Corporation, CN=go.microsoft.com"[..])
        );
    }
    if let Some(flow) = one_flow("tls/tls-issuer-zero", "input.pcap") {
        let al = flow.run(&cfg());
        let t = tls_tx(&al);
        assert_eq!(
            t.buffer(TlsBuffer::CertIssuer, 0),
            Some(&b"C=US, O=Microsoft Corporation, CN=Microsoft RSA TL\0 CA 01"[..])
        );
    }
    if let Some(p) = sv_pcap("tls/tls-cert-noissuer", "tls.pcap") {
        let al = flows(&p).remove(0).run(&cfg());
        let subject = tls_tx(&al).buffer(TlsBuffer::CertSubject, 0).unwrap();
        assert!(
            memchr::memmem::find(subject, b"localhost").is_some(),
            "{}",
            String::from_utf8_lossy(subject)
        );
    }
}

#[test]
fn real_capture_http_and_dns_counts_match_tshark() {
    // chrissanders-http_espn: tshark counts 61 HTTP requests (`http.request`) and 14 DNS
    // queries with 14 responses (`dns.flags.response == 0/1`) over all flows.
    let Some(p) = real_pcap("chrissanders-http_espn.pcap") else {
        return;
    };
    let (mut requests, mut dns_q, mut dns_r) = (0, 0, 0);
    for f in flows(&p) {
        let al = f.run(&cfg());
        match al.proto() {
            AppProto::Http => {
                requests += http_txs(&al)
                    .iter()
                    .filter(|t| t.method().is_some())
                    .count();
            }
            AppProto::Dns => {
                for t in dns_txs(&al) {
                    if t.is_request() {
                        dns_q += 1;
                    } else {
                        dns_r += 1;
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!((requests, dns_q, dns_r), (61, 14, 14));
}

#[test]
fn real_capture_http_eve_matches_suricata() {
    // Suricata 7.0.10's `http` EVE records for two flows of chrissanders-dns_isp_hijack
    // (the same fields it puts in alert metadata). All 269 HTTP records Suricata writes for
    // the nine real captures were compared with this code's objects during development; this
    // test pins a redirect and a keep-alive second transaction.
    let Some(p) = real_pcap("chrissanders-dns_isp_hijack.pcap") else {
        return;
    };
    let flows = flows(&p);
    let by_port = |port: u16| {
        flows
            .iter()
            .find(|f| f.client.1 == port)
            .map(|f| f.run(&cfg()))
    };
    let al = by_port(64255).unwrap();
    assert_eq!(
        al.tx(0).unwrap().eve(),
        serde_json::json!({"hostname": "3439ur09dhiolh32ljha.net", "url": "/favicon.ico",
            "http_user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/56.0.2924.87 Safari/537.36",
            "http_content_type": "text/html", "http_refer": "http://3439ur09dhiolh32ljha.net/", "http_method": "GET",
            "protocol": "HTTP/1.1", "status": 302, "redirect": "http://localhost/favicon.ico", "length": 154})
    );
    let al = by_port(64257).unwrap();
    assert_eq!(
        al.tx(1).unwrap().eve(),
        serde_json::json!({"hostname": "searchguide.level3.com", "url": "/s/css/bootstrap.min.css",
            "http_user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/56.0.2924.87 Safari/537.36",
            "http_content_type": "text/css", "http_refer": "http://searchguide.level3.com/search/?q=http%3A//3439ur09dhiolh32ljha.net/&r=&t=0",
            "http_method": "GET", "protocol": "HTTP/1.1", "status": 200, "length": 18137})
    );
}

#[test]
fn chunking_does_not_change_real_flows() {
    let mut cases = Vec::new();
    for (t, f) in [
        ("http-request-header", "input.pcap"),
        ("bug-4199-4", "input.pcap"),
        ("http-missing-protocol", "input.pcap"),
        ("tls/tls-fingerprint-alert", "input.pcap"),
        ("http-post-data-decompression", "input.pcap"),
    ] {
        if let Some(flow) = one_flow(t, f) {
            cases.push((t, flow));
        }
    }
    for (name, flow) in cases {
        let whole = snapshot(&flow.run(&cfg()));
        for step in [1, 2, 3, 7, 64, 1000] {
            assert_eq!(
                snapshot(&run_chunked(&flow, step)),
                whole,
                "{name} step {step}"
            );
        }
    }
}
