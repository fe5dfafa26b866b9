use super::*;

fn p(s: &str) -> Vec<String> {
    parse_pointer(s).unwrap()
}

#[test]
fn json_set_keeps_formatting() {
    let text = "{\n  \"Parameters\": {\n    \"ImageTag\": \"old\",  \"N\": [1, 2, {\"x\": true}]\n  },\n  \"Tags\": {}\n}\n";
    let out = set(
        text,
        Format::Json,
        &p("/Parameters/ImageTag"),
        &"v1.2".into(),
    )
    .unwrap();
    assert_eq!(out, text.replace("\"old\"", "\"v1.2\""));
    assert_eq!(
        get(text, Format::Json, &p("/Parameters/N/2/x")).unwrap(),
        "true"
    );
    assert_eq!(
        get(text, Format::Json, &p("/Parameters/ImageTag")).unwrap(),
        "old"
    );
    assert!(get(text, Format::Json, &p("/Parameters/Nope"))
        .unwrap_err()
        .contains("no key \"Nope\""));
    assert!(get(text, Format::Json, &p("/Parameters/N/7"))
        .unwrap_err()
        .contains("past the end"));
    assert!(get("{\"a\": 1", Format::Json, &p("/b")).is_err());
    assert_eq!(
        get(r#"{"a/b": {"~": 5}}"#, Format::Json, &p("/a~1b/~0")).unwrap(),
        "5"
    );
}

#[test]
fn yaml_get_and_set_in_place() {
    let text = "# app config\nservice: orders   # the name\nimage:\n  repo: \"ecr/orders\"\n  tag: 'v1'\nports:\n  - 80\n  - name: https\n    port: 443\nenv: [a, b]\n";
    assert_eq!(get(text, Format::Yaml, &p("/service")).unwrap(), "orders");
    assert_eq!(
        get(text, Format::Yaml, &p("/image/repo")).unwrap(),
        "ecr/orders"
    );
    assert_eq!(get(text, Format::Yaml, &p("/image/tag")).unwrap(), "v1");
    assert_eq!(get(text, Format::Yaml, &p("/ports/0")).unwrap(), "80");
    assert_eq!(get(text, Format::Yaml, &p("/ports/1/port")).unwrap(), "443");
    let out = set(text, Format::Yaml, &p("/image/tag"), &"2.0.1".into()).unwrap();
    assert_eq!(
        out,
        text.replace("'v1'", "'2.0.1'"),
        "quoting style is kept"
    );
    let out = set(text, Format::Yaml, &p("/image/repo"), &"it's".into()).unwrap();
    assert!(out.contains("  repo: \"it's\"\n"), "{out}");
    let out = set(text, Format::Yaml, &p("/service"), &"billing".into()).unwrap();
    assert_eq!(out, text.replace("orders   #", "billing   #"));
    let out = set(text, Format::Yaml, &p("/ports/1/port"), &8443.into()).unwrap();
    assert!(out.contains("    port: 8443\n"));
    assert!(get(text, Format::Yaml, &p("/env/0"))
        .unwrap_err()
        .contains("line 10: flow collection"));
    assert!(get(text, Format::Yaml, &p("/image"))
        .unwrap_err()
        .contains("not a scalar"));
    assert!(get(text, Format::Yaml, &p("/nope"))
        .unwrap_err()
        .contains("no key"));
}

fn refused(text: &str, pointer: &str, words: &str) {
    let e = set(text, Format::Yaml, &p(pointer), &"new".into()).unwrap_err();
    assert!(e.contains(words), "{pointer}: {e}");
}

#[test]
fn yaml_multi_line_plain_scalars_are_refused() {
    let text = "a:\n  b: first line\n    continued here\n  c: x\nlist:\n- one\n  more\n- two\n";
    refused(text, "/a/b", "line 2: multi-line");
    refused(text, "/list/0", "line 6: multi-line");
    let out = set(text, Format::Yaml, &p("/a/c"), &"y".into()).unwrap();
    assert_eq!(out, text.replace("c: x", "c: y"));
    let out = set(text, Format::Yaml, &p("/list/1"), &"2".into()).unwrap();
    assert_eq!(out, text.replace("- two", "- \"2\""));
    refused("a: \"open\n  close\"\n", "/a", "line 1: multi-line");
    refused("a:\n  first\n  second\n", "/a", "line 2: multi-line");
}

#[test]
fn yaml_block_scalars_tags_and_anchors_are_refused() {
    let text = "lit: |\n  b: 1\nfold: >-\n  x\nsub: !Sub \"${AWS::Region}-x\"\nref: !Ref Bucket\nflowm: {a: 1}\nflows: [1, 2]\nanc: &a v\nali: *a\nseq:\n- !Ref X\n";
    refused(text, "/lit", "line 1: block scalar (`|`)");
    refused(text, "/lit/b", "line 1");
    refused(text, "/fold", "line 3: block scalar (`>`)");
    refused(text, "/sub", "line 5: tagged value (`!Sub`)");
    refused(text, "/ref", "line 6: tagged value (`!Ref`)");
    // Inside a flow collection nothing is edited in place; the whole collection
    // is replaced (written in block style).
    refused(text, "/flowm/a", "line 7: flow collection");
    let out = set(text, Format::Yaml, &p("/flowm"), &"new".into()).unwrap();
    assert_eq!(out, text.replace("flowm: {a: 1}", "flowm: new"));
    let out = set(text, Format::Yaml, &p("/flows"), &serde_json::json!([3])).unwrap();
    assert_eq!(out, text.replace("flows: [1, 2]", "flows:\n  - 3"));
    refused(text, "/anc", "line 9: values with an anchor");
    refused(text, "/ali", "line 10: alias");
    refused(text, "/seq/0", "line 12: tagged value (`!Ref`)");
}

#[test]
fn yaml_sequences_at_the_indent_of_their_key() {
    let text = "Resources:\n  Fn:\n    Properties:\n      Layers:\n      - arn:1\n      - arn:2\n      Runtime: python3.12\n  Other:\n    Type: X\n";
    let out = set(
        text,
        Format::Yaml,
        &p("/Resources/Fn/Properties/Layers/1"),
        &"arn:9".into(),
    )
    .unwrap();
    assert_eq!(out, text.replace("- arn:2", "- \"arn:9\""));
    assert_eq!(
        get(text, Format::Yaml, &p("/Resources/Fn/Properties/Runtime")).unwrap(),
        "python3.12"
    );
    assert_eq!(
        get(text, Format::Yaml, &p("/Resources/Other/Type")).unwrap(),
        "X"
    );
    assert!(
        get(text, Format::Yaml, &p("/Resources/Fn/Properties/Layers/2"))
            .unwrap_err()
            .contains("past the end")
    );
    let nested = "- a:\n  - 1\n  - 2\n  b: 3\n";
    let out = set(nested, Format::Yaml, &p("/0/a/1"), &5.into()).unwrap();
    assert_eq!(out, "- a:\n  - 1\n  - 5\n  b: 3\n");
}

#[test]
fn yaml_edits_are_verified_by_reparsing() {
    // The anchored mapping is also used through an alias: editing it in place
    // would change /other too, so the edit is refused.
    let text = "base: &b\n  x: 1\nother: *b\n";
    let e = set(text, Format::Yaml, &p("/base/x"), &2.into()).unwrap_err();
    assert!(e.contains("would also change"), "{e}");
    // Without an alias the anchored mapping can be edited.
    let text = "base: &b\n  x: 1\n";
    assert_eq!(
        set(text, Format::Yaml, &p("/base/x"), &2.into()).unwrap(),
        "base: &b\n  x: 2\n"
    );
    // Values of every JSON type round-trip.
    let text = "a: 1\n";
    for v in [
        serde_json::json!(null),
        serde_json::json!(true),
        serde_json::json!(1.5),
        serde_json::json!(-7),
        serde_json::json!("multi\nline 'q'"),
        serde_json::json!("yes"),
        serde_json::json!([1, "two", {"k": null}]),
        serde_json::json!({"a b": [true]}),
    ] {
        let out = set(text, Format::Yaml, &p("/a"), &v).unwrap();
        assert!(out.starts_with("a:"), "{out}");
    }
    let text = "a: 'x'\n";
    let out = set(text, Format::Yaml, &p("/a"), &"l1\nl2".into()).unwrap();
    assert_eq!(out, "a: \"l1\\nl2\"\n");
    // Duplicate JSON keys: the first is edited, the parser keeps the last: refused.
    let e = set("{\"a\": 1, \"a\": 2}", Format::Json, &p("/a"), &3.into()).unwrap_err();
    assert!(
        e.contains("would also change") || e.contains("duplicate"),
        "{e}"
    );
    let e = set("a: 1\n---\nb: 2\n", Format::Yaml, &p("/a"), &3.into()).unwrap_err();
    assert!(e.contains("documents"), "{e}");
}

#[test]
fn yaml_alias_bombs_are_refused_before_expansion() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        let items = [prev.as_str(); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
    }
    text.push_str("v: 1\n");
    let e = set(&text, Format::Yaml, &p("/v"), &2.into()).unwrap_err();
    assert!(e.contains("aliases"), "{e}");
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let text = "[".repeat(1_000_000);
    assert!(get(&text, Format::Json, &p("/0"))
        .unwrap_err()
        .contains("invalid JSON"));
    let text = format!("{{\"a\": {}1{}}}", "[".repeat(200), "]".repeat(200));
    assert!(set(&text, Format::Json, &p("/a"), &1.into()).is_err());
}

#[test]
fn yaml_cloudformation_template_with_tags_elsewhere() {
    let text = "AWSTemplateFormatVersion: '2010-09-09'\nParameters:\n  ImageTag:\n    Type: String\n    Default: latest # set by the pipeline\nResources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: !GetAtt Role.Arn\n      Code:\n        ImageUri: !Sub '${Repo}:${ImageTag}'\n      Environment:\n        Variables:\n          SCRIPT: |\n            echo: hi\n            - not a list\n          STAGE: prod\nOutputs:\n  Arn:\n    Value: !Ref Fn\n";
    let out = set(
        text,
        Format::Yaml,
        &p("/Parameters/ImageTag/Default"),
        &"v1.4.2".into(),
    )
    .unwrap();
    assert_eq!(out, text.replace("Default: latest #", "Default: v1.4.2 #"));
    let out = set(
        text,
        Format::Yaml,
        &p("/Resources/Fn/Properties/Environment/Variables/STAGE"),
        &"dev".into(),
    )
    .unwrap();
    assert_eq!(out, text.replace("STAGE: prod", "STAGE: dev"));
    refused(
        text,
        "/Resources/Fn/Properties/Code/ImageUri",
        "line 12: tagged value (`!Sub`)",
    );
    refused(
        text,
        "/Resources/Fn/Properties/Environment/Variables/SCRIPT",
        "line 15: block scalar",
    );
    refused(text, "/Outputs/Arn/Value", "line 21: tagged value (`!Ref`)");
}

#[test]
fn yaml_merge_keys_share_the_anchored_mapping() {
    let text = "defaults: &d\n  image: app:1\nweb:\n  <<: *d\n  port: 80\n";
    // Editing web's own key is fine; editing the anchored mapping would also change web.
    let out = set(text, Format::Yaml, &p("/web/port"), &8080.into()).unwrap();
    assert_eq!(out, text.replace("port: 80", "port: 8080"));
    let e = set(text, Format::Yaml, &p("/defaults/image"), &"app:2".into()).unwrap_err();
    assert!(e.contains("would also change"), "{e}");
}
