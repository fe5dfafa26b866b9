//! Structured edits: exact text for the common cases (what is kept byte for byte),
//! RFC 7396's own examples, and a property test of merge patches on random documents
//! in both formats against a reference merge on parsed values.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn p(s: &str) -> Vec<String> {
    parse_pointer(s).unwrap()
}

fn merge(text: &str, format: Format, patch: Value) -> Result<String, String> {
    edit(
        text,
        format,
        &Edit::Merge {
            pointer: Vec::new(),
            patch,
        },
    )
}

/// RFC 7396, section 2, as a reference on parsed values.
fn reference_merge(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in members {
        if v.is_null() {
            t.remove(k);
        } else {
            reference_merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn parse(text: &str, format: Format) -> Value {
    match format {
        Format::Json => serde_json::from_str(text).unwrap(),
        Format::Yaml => {
            let docs = yaml_rust2::YamlLoader::load_from_str(text).unwrap();
            yaml_to_json(&docs[0])
        }
    }
}

fn yaml_to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => json!(b),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
        Yaml::String(s) => json!(s),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), yaml_to_json(v)))
                .collect(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn json_merge_patch_keeps_the_rest_byte_for_byte() {
    let text = "{\n  \"name\": \"web\",\n  \"debug\": true,\n  \"db\": {\n    \"host\": \"localhost\",\n    \"port\": 5432\n  },\n  \"tags\": [\"a\"]\n}\n";
    let out = merge(
        text,
        Format::Json,
        json!({"debug": null, "db": {"host": "db.prod", "pool": {"max": 20}}, "region": "eu-west-1"}),
    )
    .unwrap();
    assert_eq!(
        out,
        "{\n  \"name\": \"web\",\n  \"db\": {\n    \"host\": \"db.prod\",\n    \"port\": 5432,\n    \"pool\": {\n      \"max\": 20\n    }\n  },\n  \"tags\": [\"a\"],\n  \"region\": \"eu-west-1\"\n}\n"
    );
    // A compact document stays compact.
    let out = merge(
        "{\"a\":1,\"b\":2}",
        Format::Json,
        json!({"a": null, "c": [1]}),
    )
    .unwrap();
    assert_eq!(out, "{\"b\":2,\"c\":[1]}");
}

#[test]
fn json_delete_append_and_create() {
    let text = "{\"a\": [1, 2, 3], \"b\": {\"only\": 1}}";
    let del = |ptr: &str| edit(text, Format::Json, &Edit::Delete { pointer: p(ptr) });
    assert_eq!(
        del("/a/0").unwrap(),
        "{\"a\": [2, 3], \"b\": {\"only\": 1}}"
    );
    assert_eq!(
        del("/a/2").unwrap(),
        "{\"a\": [1, 2], \"b\": {\"only\": 1}}"
    );
    assert_eq!(del("/b/only").unwrap(), "{\"a\": [1, 2, 3], \"b\": {}}");
    assert_eq!(del("/b").unwrap(), "{\"a\": [1, 2, 3]}");
    assert!(del("/c").unwrap_err().contains("nothing at /c"));
    let app = edit(
        text,
        Format::Json,
        &Edit::Append {
            pointer: p("/a"),
            values: vec![json!(4), json!({"x": 5})],
        },
    );
    assert_eq!(
        app.unwrap(),
        "{\"a\": [1, 2, 3, 4, {\"x\":5}], \"b\": {\"only\": 1}}"
    );
    let create = edit(
        "{}",
        Format::Json,
        &Edit::Set {
            pointer: p("/Parameters/ImageTag"),
            value: json!("v2"),
            create: true,
        },
    );
    assert_eq!(create.unwrap(), "{\"Parameters\":{\"ImageTag\":\"v2\"}}");
    let no_create = set("{}", Format::Json, &p("/a"), &json!(1)).unwrap_err();
    assert!(no_create.contains("no key"), "{no_create}");
}

#[test]
fn yaml_overlay_keeps_comments_and_layout() {
    let text = "\
# Service configuration
service:
  name: web   # shown in the console
  replicas: 1
  env:
  - name: LOG_LEVEL
    value: debug
database:
  host: localhost
  port: 5432
debug: true
";
    let patch = json!({
        "service": {"replicas": 3, "env": [{"name": "LOG_LEVEL", "value": "info"}]},
        "database": {"host": "db.prod.internal", "pool": {"min": 2, "max": 20}},
        "debug": null,
        "alarms": ["cpu", "memory"]
    });
    let out = merge(text, Format::Yaml, patch).unwrap();
    assert_eq!(
        out,
        "\
# Service configuration
service:
  name: web   # shown in the console
  replicas: 3
  env:
    - name: LOG_LEVEL
      value: info
database:
  host: db.prod.internal
  port: 5432
  pool:
    min: 2
    max: 20
alarms:
  - cpu
  - memory
"
    );
}

#[test]
fn yaml_delete_append_and_create() {
    let text = "items:\n- name: a\n  size: 1\n- name: b\nmeta:\n  only: x\n";
    let del = |ptr: &str| edit(text, Format::Yaml, &Edit::Delete { pointer: p(ptr) });
    assert_eq!(
        del("/items/0").unwrap(),
        "items:\n- name: b\nmeta:\n  only: x\n"
    );
    assert_eq!(
        del("/items/0/name").unwrap(),
        "items:\n- size: 1\n- name: b\nmeta:\n  only: x\n"
    );
    assert_eq!(
        del("/items/1/name").unwrap(),
        "items:\n- name: a\n  size: 1\n- {}\nmeta:\n  only: x\n"
    );
    assert_eq!(
        del("/meta/only").unwrap(),
        "items:\n- name: a\n  size: 1\n- name: b\nmeta: {}\n"
    );
    let app = edit(
        text,
        Format::Yaml,
        &Edit::Append {
            pointer: p("/items"),
            values: vec![json!({"name": "c", "size": 3}), json!("d")],
        },
    );
    assert_eq!(
        app.unwrap(),
        "items:\n- name: a\n  size: 1\n- name: b\n- name: c\n  size: 3\n- d\nmeta:\n  only: x\n"
    );
    let create = edit(
        text,
        Format::Yaml,
        &Edit::Set {
            pointer: p("/meta/labels/team"),
            value: json!("platform"),
            create: true,
        },
    );
    assert_eq!(
        create.unwrap(),
        "items:\n- name: a\n  size: 1\n- name: b\nmeta:\n  only: x\n  labels:\n    team: platform\n"
    );
    let into_list = edit(
        text,
        Format::Yaml,
        &Edit::Set {
            pointer: p("/items/5/name"),
            value: json!("x"),
            create: true,
        },
    );
    assert!(into_list.unwrap_err().contains("use `append`"));
}

#[test]
fn yaml_edits_refuse_tags_and_shared_anchors() {
    let text = "Resources:\n  Fn:\n    Properties:\n      Code: !Sub '${Bucket}'\n";
    let e = merge(
        text,
        Format::Yaml,
        json!({"Resources": {"Fn": {"Properties": {"Code": "x"}}}}),
    )
    .unwrap_err();
    assert!(e.contains("tagged value"), "{e}");
    let text = "base: &b\n  x: 1\nother: *b\n";
    let e = merge(text, Format::Yaml, json!({"base": {"y": 2}})).unwrap_err();
    assert!(e.contains("would also change"), "{e}");
}

/// The examples of RFC 7396, appendix A, in both formats.
#[test]
fn rfc7396_examples() {
    let cases = [
        (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
        (json!({"a":"b"}), json!({"a":null}), json!({})),
        (
            json!({"a":"b","b":"c"}),
            json!({"a":null}),
            json!({"b":"c"}),
        ),
        (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
        (
            json!({"a":{"b":"c"}}),
            json!({"a":{"b":"d","c":null}}),
            json!({"a":{"b":"d"}}),
        ),
        (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a":"b"}), json!(["c"]), json!(["c"])),
        (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
        (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
        (
            json!({}),
            json!({"a":{"bb":{"ccc":null}}}),
            json!({"a":{"bb":{}}}),
        ),
    ];
    for (target, patch, want) in cases {
        for (format, text) in [
            (Format::Json, serde_json::to_string_pretty(&target).unwrap()),
            (Format::Yaml, yaml_edit::document(&target)),
        ] {
            let out = merge(&text, format, patch.clone())
                .unwrap_or_else(|e| panic!("{format:?} {text:?} + {patch}: {e}"));
            assert_eq!(
                parse(&out, format),
                want,
                "{format:?} {text:?} + {patch} -> {out:?}"
            );
        }
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(|n| json!(n)),
        "[a-z ]{0,6}".prop_map(Value::String),
        Just(json!("yes")),
        Just(json!("1.5")),
        Just(json!("a: b")),
        Just(json!("- x")),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d]", tree(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any merge patch on any document, written compact, pretty or as block YAML,
    /// gives what the reference merge gives on the parsed values.
    #[test]
    fn merge_patch_matches_the_reference(target in object(), patch in object()) {
        let mut want = target.clone();
        reference_merge(&mut want, &patch);
        for (format, text) in [
            (Format::Json, serde_json::to_string(&target).unwrap()),
            (Format::Json, serde_json::to_string_pretty(&target).unwrap()),
            (Format::Yaml, yaml_edit::document(&target)),
        ] {
            let out = merge(&text, format, patch.clone())
                .map_err(|e| TestCaseError::fail(format!("{text:?} + {patch}: {e}")))?;
            prop_assert_eq!(parse(&out, format), want.clone(), "{:?} + {} -> {:?}", text, patch, out);
        }
    }
}

#[test]
fn review_findings_hold() {
    // A key YAML reads as a boolean is not a text key: refused, never a panic.
    let e = set("True: 1\nb: 2\n", Format::Yaml, &p("/True"), &json!(3)).unwrap_err();
    assert!(e.contains("nothing at /True"), "{e}");
    // A comment after `key:` does not hide the block below it.
    let text = "Resources:   # all of them\n  Bucket:\n    Type: AWS::S3::Bucket\nitems:\n- # first\n  name: a\n";
    let out = set(
        text,
        Format::Yaml,
        &p("/Resources/Bucket/Type"),
        &json!("X"),
    )
    .unwrap();
    assert_eq!(out, text.replace("AWS::S3::Bucket", "X"));
    let out = set(text, Format::Yaml, &p("/items/0/name"), &json!("b")).unwrap();
    assert_eq!(out, text.replace("name: a", "name: b"));
    // CRLF files stay CRLF.
    let crlf = "a:\r\n  x: 1\r\nb: [1]\r\n";
    let out = merge(
        crlf,
        Format::Yaml,
        json!({"a": {"k": "v", "x": null}, "c": {"d": 1}}),
    )
    .unwrap();
    assert_eq!(out, "a:\r\n  k: v\r\nb: [1]\r\nc:\r\n  d: 1\r\n");
    let crlf = "{\r\n  \"a\": 1\r\n}\r\n";
    let out = merge(crlf, Format::Json, json!({"b": {"c": 2}})).unwrap();
    assert_eq!(
        out,
        "{\r\n  \"a\": 1,\r\n  \"b\": {\r\n    \"c\": 2\r\n  }\r\n}\r\n"
    );
    // Strings a YAML 1.1 reader would take for a date or a number are quoted.
    for (v, written) in [
        ("2024-05-01", "\"2024-05-01\""),
        ("1_000", "\"1_000\""),
        ("1:30", "\"1:30\""),
        ("1.4.2", "1.4.2"),
    ] {
        let out = set("v: x\n", Format::Yaml, &p("/v"), &json!(v)).unwrap();
        assert_eq!(out, format!("v: {written}\n"), "{v}");
    }
    // A patch that would pass over the text too many times is refused.
    let big: serde_json::Map<String, Value> = (0..400)
        .map(|i| (format!("k{i}"), json!("x".repeat(20))))
        .collect();
    let text = serde_json::to_string_pretty(&Value::Object(big)).unwrap();
    let patch: serde_json::Map<String, Value> =
        (0..400).map(|i| (format!("n{i}"), json!(i))).collect();
    let e = merge(&text, Format::Json, Value::Object(patch)).unwrap_err();
    assert!(e.contains("passes over"), "{e}");
}
