//! RFC 5424 formatting and address parsing of the syslog output.

use super::*;

fn transport() -> SyslogTransport {
    let config: OutputConfig =
        serde_yaml::from_str("type: syslog\naddress: udp://127.0.0.1:9\nfacility: local3").unwrap();
    SyslogTransport::new(&config).unwrap()
}

/// An alert becomes `<PRI>1 TIMESTAMP HOST shrike PID KIND [SD] MSG` with its severity in
/// PRI (local3 * 8 + err) and its rule in the structured data, escaped.
#[test]
fn an_alert_is_formatted_as_rfc5424_with_structured_data() {
    let mut t = transport();
    t.header.hostname = "node-1".into();
    t.header.procid = 42;
    t.format(&Record {
        line: "{\"kind\":\"process_exec\"}".into(),
        time_unix_ns: 1_700_000_000_123_456_789,
        kind: "process_exec",
        severity: Some(Arc::from("high")),
        rule: Some(Arc::from("odd\"rule]")),
    });
    assert_eq!(
        String::from_utf8(t.buf.clone()).unwrap(),
        "<155>1 2023-11-14T22:13:20.123456Z node-1 shrike 42 process_exec [shrike@32473 rule=\"odd\\\"rule\\]\" severity=\"high\"] {\"kind\":\"process_exec\"}"
    );
}

/// A plain event has no structured data and the info severity.
#[test]
fn a_plain_event_has_nil_structured_data() {
    let mut t = transport();
    t.header.hostname = "h".into();
    t.header.procid = 1;
    t.format(&Record {
        line: "x".into(),
        time_unix_ns: 0,
        kind: "dns",
        severity: None,
        rule: None,
    });
    assert_eq!(
        String::from_utf8(t.buf.clone()).unwrap(),
        "<158>1 1970-01-01T00:00:00.000000Z h shrike 1 dns - x"
    );
}

/// Addresses name their transport; anything else is refused with the accepted forms.
#[test]
fn addresses_parse_by_scheme() {
    assert_eq!(
        Address::parse("unix:///dev/log").unwrap(),
        Address::Unix("/dev/log".into())
    );
    assert_eq!(
        Address::parse("tcp://h:601").unwrap(),
        Address::Tcp("h:601".into())
    );
    assert_eq!(
        Address::parse("relp://h:2514").unwrap(),
        Address::Relp("h:2514".into())
    );
    assert_eq!(
        Address::parse("relps://h:2514").unwrap().to_string(),
        "relps://h:2514"
    );
    let err = Address::parse("h:514").unwrap_err().to_string();
    assert!(err.contains("udp://HOST:PORT"), "{err}");
    assert!(err.contains("relp://HOST:PORT"), "{err}");
    let err = Address::parse("rfc3195://h:601").unwrap_err().to_string();
    assert!(err.contains("unix, udp, tcp, tls, relp or relps"), "{err}");
}
