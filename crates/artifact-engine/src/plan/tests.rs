use super::*;

fn ctx(i: &[&str], o: &[&str]) -> JobContext {
    JobContext {
        inputs: i.iter().map(|s| s.to_string()).collect(),
        outputs: o.iter().map(|s| s.to_string()).collect(),
        builtins: BTreeMap::from([("CODEPIPELINE_JOB_ID".into(), "j-1".into())]),
    }
}

fn plan(json: &str, c: &JobContext) -> Result<Plan, PlanError> {
    Plan::compile(&PlanSpec::parse(Some(json))?, c)
}

fn one(json: &str) -> Plan {
    plan(json, &ctx(&["A"], &["X"])).unwrap()
}

fn name_of(p: &Plan, n: &str) -> Option<String> {
    p.output(0)
        .decide(0, n, n.ends_with('/'))
        .unwrap()
        .map(|e| e.name)
}

#[test]
fn empty_parameters_copy_everything() {
    let p = Plan::compile(&PlanSpec::parse(None).unwrap(), &ctx(&["A"], &["X"])).unwrap();
    let e = p.output(0).decide(0, "a/b.txt", false).unwrap().unwrap();
    assert_eq!(e.name, "a/b.txt");
    assert!(!e.needs_content(8));
    assert_eq!(p.output(0).sources[0].input, 0);
}

/// Routes name artifacts: with more than one input or output, `outputs` is required
/// (never the order of artifacts in the event), and the error shows a document.
#[test]
fn routes_never_follow_event_order() {
    for (i, o) in [
        (&["A", "B"][..], &["X"][..]),
        (&["A"][..], &["X", "Y"][..]),
        (&["A", "B"][..], &["X", "Y"][..]),
        (&["A", "B", "C"][..], &["X", "Y"][..]),
    ] {
        for json in ["{}", r#"{"steps":[{"exclude":["*.map"]}]}"#] {
            let e = plan(json, &ctx(i, o)).unwrap_err();
            assert_eq!(e.path, "outputs", "{i:?} {o:?}");
            assert!(
                e.message.contains(r#"e.g. {"outputs": {"X":{"from":["A""#),
                "{e}"
            );
        }
    }
    let e = Plan::compile(
        &PlanSpec::parse(None).unwrap(),
        &ctx(&["A", "B"], &["X", "Y"]),
    )
    .unwrap_err();
    assert_eq!(e.path, "outputs");
    // Named routes: B feeds X, A feeds Y, whatever the event order.
    let p = plan(
        r#"{"outputs":{"X":{"from":["B"]},"Y":{"from":["A"]}}}"#,
        &ctx(&["A", "B"], &["X", "Y"]),
    )
    .unwrap();
    assert_eq!(p.output(0).sources[0].input_name, "B");
    assert_eq!(p.output(1).sources[0].input_name, "A");
}

#[test]
fn errors_name_the_field() {
    let c = ctx(&["A"], &["X"]);
    let cases = [
        (
            r#"{"steps":[{"exclude":["a"]},{"replace":{"files":["["],"find":"a","with":"b"}}]}"#,
            "steps[1].replace.files[0]",
            "invalid glob",
        ),
        (
            r#"{"steps":[{"exclude":["a"]},{"replce":{}}]}"#,
            "steps[1].replce",
            "replace",
        ),
        (r#"{"stepz":[]}"#, "stepz", "unknown field"),
        (
            r#"{"outputs":{"X":{"from":["Nope"]}}}"#,
            "outputs.X.from[0]",
            "no input artifact",
        ),
        (
            r#"{"outputs":{"Nope":{"from":["A"]}}}"#,
            "outputs.Nope",
            "no output artifact",
        ),
        (
            r#"{"steps":[{"replace":{"files":["*"],"find":"","with":"b"}}]}"#,
            "steps[0].replace.find",
            "empty",
        ),
        (
            r#"{"steps":[{"replace":{"files":["*"],"regex":"(","with":"b"}}]}"#,
            "steps[0].replace.regex",
            "invalid regex",
        ),
        (
            r#"{"steps":[{"replace":{"files":["*"],"find":"a","regex":"b","with":"b"}}]}"#,
            "steps[0].replace",
            "exactly one",
        ),
        (
            r#"{"steps":[{"move":{"regex":"x"}}]}"#,
            "steps[0].move.to",
            "needs `to`",
        ),
        (
            r#"{"steps":[{"move":{}}]}"#,
            "steps[0].move",
            "does nothing",
        ),
        (
            r#"{"steps":[{"set":{"files":["a.json"],"pointer":"x","value":1}}]}"#,
            "steps[0].set.pointer",
            "start with",
        ),
        (
            r#"{"steps":[{"add":{"path":"../x","text":"t"}}]}"#,
            "steps[0].add.path",
            "..",
        ),
        (
            r#"{"steps":[{"add":{"path":"x","base64":"!!"}}]}"#,
            "steps[0].add.base64",
            "base64",
        ),
        (
            r#"{"steps":[{"export":{"variable":"a.b","file":"x"}}]}"#,
            "steps[0].export.variable",
            "[A-Za-z0-9@_-]+",
        ),
        (
            r#"{"steps":[{"export":{"variable":"v","file":"x.txt","pointer":"/a"}}]}"#,
            "steps[0].export.format",
            "format",
        ),
        (
            r#"{"steps":[{"pack":{"level":12}}]}"#,
            "steps[0].pack.level",
            "0 to 9",
        ),
        (
            r#"{"steps":[{"pack":{"mtime":"1970-01-01"}}]}"#,
            "steps[0].pack.mtime",
            "1980",
        ),
        (
            r#"{"steps":[{"pack":{"file_mode":"rwx"}}]}"#,
            "steps[0].pack.file_mode",
            "octal",
        ),
        (
            r#"{"steps":[{"custom":{"name":"nope","files":["*"]}}]}"#,
            "steps[0].custom.name",
            "no custom step",
        ),
        (
            r#"{"steps":[{"include":{"files":["*"],"inputs":["Z"]}}]}"#,
            "steps[0].include.inputs[0]",
            "no input",
        ),
        (
            r#"{"steps":[{"include":7}]}"#,
            "steps[0].include",
            "list of globs",
        ),
        (
            r#"{"steps":[{"template":{"files":"*.json"}}]}"#,
            "steps[0].template.files",
            "sequence",
        ),
        (r#"{"variables":{"1X":"a"}}"#, "variables.1X", "letters"),
        (
            r#"{"on_unknown_variable":"ignore"}"#,
            "on_unknown_variable",
            "keep",
        ),
        (
            r#"{"outputs":{"X":{"from":[{"input":"A","prefx":"a/"}]}}}"#,
            "outputs.X.from[0]",
            "input",
        ),
    ];
    for (json, path, words) in cases {
        let e = plan(json, &c).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
        assert!(e.message.contains(words), "{json}: {e}");
    }
    let e = PlanSpec::parse(Some("input_parameter")).unwrap_err();
    assert_eq!(e.path, "(document)");
}

#[test]
fn globs_are_gitignore_like() {
    let p =
        one(r#"{"steps":[{"exclude":["*.map","docs/**"]},{"include":["src/**","README.md"]}]}"#);
    assert_eq!(name_of(&p, "src/deep/x.js.map"), None);
    assert_eq!(name_of(&p, "docs/a.md"), None);
    assert_eq!(
        name_of(&p, "src/deep/x.js").as_deref(),
        Some("src/deep/x.js")
    );
    assert_eq!(
        name_of(&p, "other/README.md").as_deref(),
        Some("other/README.md")
    );
    assert_eq!(name_of(&p, "other.txt"), None);
    // `src/**` also keeps the directory entry itself (see plan::glob).
    assert_eq!(name_of(&p, "src/").as_deref(), Some("src/"));
    assert_eq!(name_of(&p, "docs/"), None);
    let p = one(r#"{"steps":[{"include":["src/","!*.map"]},{"exclude":["node_modules/"]}]}"#);
    assert_eq!(name_of(&p, "src/").as_deref(), Some("src/"));
    assert_eq!(name_of(&p, "src/a.js").as_deref(), Some("src/a.js"));
    assert_eq!(
        name_of(&p, "src/a.js.map").as_deref(),
        Some("src/a.js.map"),
        "src/ already selected it"
    );
    assert_eq!(name_of(&p, "src/node_modules/x/y.js"), None);
    assert_eq!(name_of(&p, "lib/a.js"), None);
    let p = one(r#"{"steps":[{"exclude":["*.map","!keep/*.map"]}]}"#);
    assert_eq!(name_of(&p, "a/b.map"), None);
    assert_eq!(name_of(&p, "keep/b.map").as_deref(), Some("keep/b.map"));
    let e = plan(
        r#"{"steps":[{"exclude":["a","//"]}]}"#,
        &ctx(&["A"], &["X"]),
    )
    .unwrap_err();
    assert_eq!(e.path, "steps[0].exclude[1]");
}

#[test]
fn moves_rename() {
    let p = one(
        r#"{"steps":[{"move":{"strip_prefix":"dist/"}},{"move":{"files":["*.js"],"regex":"(.*)\\.js","to":"js/$1.mjs"}},{"move":{"files":["img/**"],"flatten":true,"add_prefix":"static/"}}]}"#,
    );
    assert_eq!(name_of(&p, "dist/app.js").as_deref(), Some("js/app.mjs"));
    assert_eq!(name_of(&p, "dist/css/a.css").as_deref(), Some("css/a.css"));
    assert_eq!(
        name_of(&p, "img/x/y/logo.png").as_deref(),
        Some("static/logo.png")
    );
    assert_eq!(name_of(&p, "img/x/"), None, "flatten drops directories");
    assert_eq!(
        name_of(&p, "dist/"),
        None,
        "the stripped prefix itself disappears"
    );
    let p = one(r#"{"steps":[{"move":{"regex":"(.*)","to":"../$1"}}]}"#);
    assert!(p
        .output(0)
        .decide(0, "a", false)
        .unwrap_err()
        .contains("invalid"));
}

#[test]
fn content_steps_and_exports() {
    let p = one(r#"{"variables":{"VERSION":"1.2.3"},"steps":[
            {"template":{"files":["*.json"]}},
            {"replace":{"files":["*.json"],"find":"aa","with":"b"}},
            {"replace":{"files":["*.txt"],"regex":"v(\\d+)","with":"w$1"}},
            {"set":{"files":["cfg.json"],"pointer":"/tag","value":"${VERSION}-x"}},
            {"export":{"variable":"Tag","file":"cfg.json","pointer":"/tag"}},
            {"export":{"variable":"Major","file":"notes.txt","regex":"w(\\d+)"}}
        ]}"#);
    let o = p.output(0);
    let e = o.decide(0, "cfg.json", false).unwrap().unwrap();
    let (out, ex) = o
        .apply(
            &e.ops,
            "cfg.json",
            br#"{"v": "${VERSION}", "j": "${CODEPIPELINE_JOB_ID}", "x": "aaa", "tag": "old"}"#
                .to_vec(),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"v": "1.2.3", "j": "j-1", "x": "ba", "tag": "1.2.3-x"}"#
    );
    assert_eq!(
        ex,
        vec![Export {
            variable: "Tag".into(),
            value: "1.2.3-x".into()
        }]
    );
    let e = o.decide(0, "notes.txt", false).unwrap().unwrap();
    let (out, ex) = o.apply(&e.ops, "notes.txt", b"v7 and v8".to_vec()).unwrap();
    assert_eq!(out, b"w7 and w8");
    assert_eq!(ex[0].value, "7");
    // Missing export file without default is an error naming the step.
    let err = o.missing_exports(&ex).unwrap_err();
    assert!(err.to_string().contains("steps[4] (export)"), "{err}");
}

#[test]
fn strict_templates_fail_with_the_entry() {
    let p = one(r#"{"on_unknown_variable":"fail","steps":[{"template":{"files":["*"]}}]}"#);
    let e = p
        .output(0)
        .apply(&[0], "f", b"${NOPE}".to_vec())
        .unwrap_err();
    assert!(
        e.to_string().contains("NOPE") && e.to_string().contains("\"f\""),
        "{e}"
    );
}

#[test]
fn pack_sets_header_fields_and_compression() {
    let p = one(
        r#"{"steps":[{"pack":{"mtime":"1980-01-01T00:00:00","file_mode":"644","dir_mode":"755"}},{"pack":{"files":["*.png"],"compression":"store"}}]}"#,
    );
    let f = p.output(0).decide(0, "a/x.png", false).unwrap().unwrap();
    assert_eq!(
        (f.method, f.mode, f.mtime),
        (Some(0), Some(0o644), Some((33, 0)))
    );
    assert!(f.needs_content(8) && !f.needs_content(0));
    let d = p.output(0).decide(0, "a/", true).unwrap().unwrap();
    assert_eq!(d.mode, Some(0o755));
}

#[test]
fn routing_merge_split_and_conflicts() {
    let c = ctx(&["A", "B"], &["X"]);
    let p = plan(r#"{"outputs":{"X":{"from":["A","B"]}}}"#, &c).unwrap();
    assert_eq!(p.output(0).sources.len(), 2);
    let e = layout_output(
        p.output(0),
        &[
            vec![("a.txt", false), ("d/", true)],
            vec![("a.txt", false), ("d/", true)],
        ],
    )
    .unwrap_err();
    assert!(
        e.contains("\"a.txt\"") && e.contains("\"A\"") && e.contains("\"B\""),
        "{e}"
    );
    let p = plan(
        r#"{"outputs":{"X":{"from":["A","B"],"on_conflict":"last"}}}"#,
        &c,
    )
    .unwrap();
    let l = layout_output(
        p.output(0),
        &[
            vec![("a.txt", false), ("d/", true)],
            vec![("a.txt", false), ("d/", true)],
        ],
    )
    .unwrap();
    let got: Vec<_> = l
        .entries
        .iter()
        .map(|e| (e.source, e.plan.name.as_str()))
        .collect();
    assert_eq!(got, [(0, "d/"), (1, "a.txt")]);
    let p = plan(
        r#"{"outputs":{"X":{"from":[{"input":"A","prefix":"a/"},{"input":"B","prefix":"b/"}]}}}"#,
        &c,
    )
    .unwrap();
    let l = layout_output(p.output(0), &[vec![("x", false)], vec![("x", false)]]).unwrap();
    assert_eq!(
        l.entries
            .iter()
            .map(|e| e.plan.name.as_str())
            .collect::<Vec<_>>(),
        ["a/x", "b/x"]
    );
    // Split one input into two outputs by glob.
    let c = ctx(&["A"], &["Web", "Api"]);
    let p = plan(r#"{"outputs":{"Web":{"from":["A"],"steps":[{"include":["web/**"]}]},"Api":{"from":["A"],"steps":[{"include":["api/**"]},{"move":{"strip_prefix":"api/"}}]}}}"#, &c).unwrap();
    assert_eq!(p.output(0).decide(0, "api/x", false).unwrap(), None);
    assert_eq!(
        p.output(1).decide(0, "api/x", false).unwrap().unwrap().name,
        "x"
    );
    assert_eq!(
        plan("{}", &ctx(&["A", "B", "C"], &["X", "Y"]))
            .unwrap_err()
            .path,
        "outputs"
    );
}

#[test]
fn adds_and_manifest() {
    let p = one(
        r#"{"variables":{"V":"3"},"steps":[{"add":{"path":"build.txt","text":"v=${V}"}},{"manifest":{}}]}"#,
    );
    let ex = p.output(0).extras();
    assert!(matches!(
        ex[0],
        Extra::Add {
            path: "build.txt",
            data: b"v=3",
            mode: None
        }
    ));
    assert!(matches!(
        ex[1],
        Extra::Manifest {
            path: "manifest.json"
        }
    ));
    assert!(p.output(0).decide(0, "x", false).unwrap().unwrap().hash);
    let e = layout_output(p.output(0), &[vec![("build.txt", false)]]).unwrap_err();
    assert!(e.contains("build.txt"), "{e}");
}

#[test]
fn custom_steps_resolve_from_the_registry() {
    let mut r = StepRegistry::new();
    r.register("upper", |opts: &serde_json::Value| {
        let suffix = opts
            .get("suffix")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        Ok(Arc::new(move |_: &str, d: Vec<u8>| {
            Ok([d.to_ascii_uppercase(), suffix.as_bytes().to_vec()].concat())
        }) as Arc<dyn CustomStep>)
    });
    let spec = PlanSpec::parse(Some(
        r#"{"steps":[{"custom":{"name":"upper","files":["*.txt"],"options":{"suffix":"!"}}}]}"#,
    ))
    .unwrap();
    let p = Plan::compile_with(&spec, &ctx(&["A"], &["X"]), &r).unwrap();
    let e = p.output(0).decide(0, "a.txt", false).unwrap().unwrap();
    assert_eq!(
        p.output(0)
            .apply(&e.ops, "a.txt", b"hi".to_vec())
            .unwrap()
            .0,
        b"HI!"
    );
    assert!(
        p.output(0)
            .decide(0, "a.bin", false)
            .unwrap()
            .unwrap()
            .ops
            .is_empty(),
        "untouched entries stay raw"
    );
}

fn decide_err(p: &Plan, n: &str) -> String {
    p.output(0).decide(0, n, n.ends_with('/')).unwrap_err()
}

#[test]
fn produced_names_follow_the_name_rules() {
    // (plan, input entry, rule in the error)
    let cases = [
        (
            r#"{"steps":[{"move":{"regex":"(.*)","to":"../$1"}}]}"#,
            "a.txt",
            "`..`",
        ),
        (
            r#"{"steps":[{"move":{"regex":"(.*)","to":"./$1"}}]}"#,
            "a.txt",
            "`.`",
        ),
        (
            r#"{"steps":[{"move":{"regex":"(.*)","to":"x/./$1"}}]}"#,
            "a.txt",
            "`.`",
        ),
        (
            r#"{"steps":[{"move":{"regex":"(.*)","to":"x//$1"}}]}"#,
            "a.txt",
            "empty path component",
        ),
        (
            r#"{"steps":[{"move":{"regex":"(.*)","to":"/$1"}}]}"#,
            "a.txt",
            "absolute",
        ),
        (
            r#"{"steps":[{"move":{"regex":"(.*)","to":"C:$1"}}]}"#,
            "a.txt",
            "drive letter",
        ),
        (
            r#"{"steps":[{"move":{"regex":"(.*)","to":"a\\$1"}}]}"#,
            "b.txt",
            "backslash",
        ),
        (
            r#"{"steps":[{"move":{"regex":"(.*)","to":"a\t$1"}}]}"#,
            "b.txt",
            "U+0009",
        ),
        (
            r#"{"steps":[{"move":{"strip_prefix":"dist"}}]}"#,
            "dist/a.txt",
            "absolute",
        ),
        (
            r#"{"steps":[{"move":{"strip_prefix":"a/"}}]}"#,
            "a/./b",
            "`.`",
        ),
        (r#"{"steps":[{"move":{"flatten":true}}]}"#, "x/..", "`..`"),
    ];
    for (json, entry, rule) in cases {
        let p = one(json);
        let e = decide_err(&p, entry);
        assert!(
            e.contains(rule) && e.contains("steps[0] (move)") && e.contains("produces"),
            "{json} on {entry:?}: {e}"
        );
    }
    // Too long after a prefix: the final name is checked too.
    let long = "x".repeat(4090);
    let p = plan(
        r#"{"outputs":{"X":{"from":[{"input":"A","prefix":"prefix/"}]}}}"#,
        &ctx(&["A"], &["X"]),
    )
    .unwrap();
    let e = p.output(0).decide(0, &long, false).unwrap_err();
    assert!(e.contains("4096"), "{e}");
    // layout_output names the entry, the input, the produced name and the rule.
    let p = one(r#"{"steps":[{"move":{"regex":"(.*)","to":"../$1"}}]}"#);
    let e = layout_output(p.output(0), &[vec![("a.txt", false)]]).unwrap_err();
    assert!(
        e.contains("\"a.txt\"") && e.contains("\"A\"") && e.contains("\"../a.txt\""),
        "{e}"
    );
    // Ordinary renames still work.
    let p = one(r#"{"steps":[{"move":{"regex":"src/(.*)","to":"lib/.../$1"}}]}"#);
    assert_eq!(name_of(&p, "src/a.rs").unwrap(), "lib/.../a.rs");
}

#[test]
fn plan_paths_follow_the_name_rules_at_compile_time() {
    for (json, at) in [
        (
            r#"{"steps":[{"add":{"path":"a/./b","text":""}}]}"#,
            "steps[0].add.path",
        ),
        (
            r#"{"steps":[{"add":{"path":"a\\b","text":""}}]}"#,
            "steps[0].add.path",
        ),
        (
            r#"{"steps":[{"add":{"path":"a\u0001b","text":""}}]}"#,
            "steps[0].add.path",
        ),
        (
            r#"{"steps":[{"manifest":{"path":"./m.json"}}]}"#,
            "steps[0].manifest.path",
        ),
        (
            r#"{"steps":[{"manifest":{"path":"m/"}}]}"#,
            "steps[0].manifest.path",
        ),
        (
            r#"{"steps":[{"move":{"add_prefix":"./"}}]}"#,
            "steps[0].move.add_prefix",
        ),
        (
            r#"{"steps":[{"move":{"add_prefix":"a\\"}}]}"#,
            "steps[0].move.add_prefix",
        ),
        (
            r#"{"outputs":{"X":{"from":[{"input":"A","prefix":"x/../"}]}}}"#,
            "outputs.X.from[0].prefix",
        ),
    ] {
        assert_eq!(
            plan(json, &ctx(&["A"], &["X"])).unwrap_err().path,
            at,
            "{json}"
        );
    }
}

#[test]
fn added_paths_must_differ() {
    let c = ctx(&["A"], &["X"]);
    let e = plan(
        r#"{"steps":[{"add":{"path":"v.txt","text":"1"}},{"add":{"path":"v.txt","text":"2"}}]}"#,
        &c,
    )
    .unwrap_err();
    assert_eq!(e.path, "steps[1].add.path");
    assert!(e.message.contains("steps[0].add.path"), "{e}");
    let e = plan(
        r#"{"steps":[{"add":{"path":"m.json","text":"1"}}],"outputs":{"X":{"from":["A"],"steps":[{"manifest":{"path":"m.json"}}]}}}"#,
        &c,
    )
    .unwrap_err();
    assert_eq!(e.path, "outputs.X.steps[0].manifest.path");
    let e = plan(
        r#"{"steps":[{"add":{"path":"README.md","text":"1"}},{"add":{"path":"readme.md","text":"2"}}]}"#,
        &c,
    )
    .unwrap_err();
    assert!(e.message.contains("letter case"), "{e}");
    plan(
        r#"{"names":{"case_duplicates":"allow"},"steps":[{"add":{"path":"README.md","text":"1"}},{"add":{"path":"readme.md","text":"2"}}]}"#,
        &c,
    )
    .unwrap();
    // Different outputs may add the same path.
    plan(
        r#"{"steps":[{"add":{"path":"v.txt","text":"1"}}],"outputs":{"X":{"from":["A"]},"Y":{"from":["A"]}}}"#,
        &ctx(&["A"], &["X", "Y"]),
    )
    .unwrap();
}

#[test]
fn case_duplicates_among_produced_names() {
    let c = ctx(&["A", "B"], &["X"]);
    let entries = [vec![("README.md", false)], vec![("readme.md", false)]];
    let p = plan(r#"{"outputs":{"X":{"from":["A","B"]}}}"#, &c).unwrap();
    let e = layout_output(p.output(0), &entries).unwrap_err();
    assert!(
        e.contains("letter case") && e.contains("\"B\"") && e.contains("\"A\""),
        "{e}"
    );
    // A rename producing a case duplicate within one input.
    let p = plan(
        r#"{"steps":[{"move":{"regex":"old/(.*)","to":"Docs/$1"}}],"outputs":{"X":{"from":["A","B"]}}}"#,
        &c,
    )
    .unwrap();
    let e = layout_output(
        p.output(0),
        &[vec![("docs/a.md", false), ("old/a.md", false)], vec![]],
    )
    .unwrap_err();
    assert!(
        e.contains("\"Docs/a.md\"") && e.contains("\"old/a.md\""),
        "{e}"
    );
    // Added files too, whatever on_conflict says (it is about exact clashes).
    let p = plan(
        r#"{"steps":[{"add":{"path":"VERSION","text":"1"}}],"outputs":{"X":{"from":["A","B"],"on_conflict":"last"}}}"#,
        &c,
    )
    .unwrap();
    let e = layout_output(p.output(0), &[vec![("version", false)], vec![]]).unwrap_err();
    assert!(
        e.contains("added file \"VERSION\"") && e.contains("letter case"),
        "{e}"
    );
    // Exact clash with on_conflict last: replaced, no case error.
    let l = layout_output(p.output(0), &[vec![("VERSION", false)], vec![]]).unwrap();
    assert_eq!(l.entries.len(), 0);
    assert_eq!(l.dropped, 1);
    // Allowed: all entries kept.
    let p = plan(
        r#"{"names":{"case_duplicates":"allow"},"outputs":{"X":{"from":["A","B"]}}}"#,
        &c,
    )
    .unwrap();
    assert!(p.name_rules().allow_case_duplicates);
    let l = layout_output(p.output(0), &entries).unwrap();
    assert_eq!(l.entries.len(), 2);
    // The same directory from two inputs is still merged silently.
    let p = plan(r#"{"outputs":{"X":{"from":["A","B"]}}}"#, &c).unwrap();
    let l = layout_output(p.output(0), &[vec![("d/", true)], vec![("d/", true)]]).unwrap();
    assert_eq!(l.entries.len(), 1);
    assert!(!p.name_rules().allow_case_duplicates);
}

#[test]
fn names_parameter_is_parsed_strictly() {
    let c = ctx(&["A"], &["X"]);
    let e = plan(r#"{"names":{"case_duplicates":"warn"}}"#, &c).unwrap_err();
    assert_eq!(e.path, "names.case_duplicates");
    let e = plan(r#"{"names":{"case":"allow"}}"#, &c).unwrap_err();
    assert!(e.message.contains("unknown field"), "{e}");
    let spec = PlanSpec::parse(Some(r#"{"names":{}}"#)).unwrap();
    assert_eq!(spec.names.case_duplicates, CaseDuplicates::Error);
}

fn replace_err(regex: &str, with: &str) -> PlanError {
    let json =
        serde_json::json!({"steps": [{"replace": {"files": ["*"], "regex": regex, "with": with}}]});
    plan(&json.to_string(), &ctx(&["A"], &["X"])).unwrap_err()
}

fn replaced(regex: &str, with: &str, input: &str) -> String {
    let json =
        serde_json::json!({"steps": [{"replace": {"files": ["*"], "regex": regex, "with": with}}]});
    let p = plan(&json.to_string(), &ctx(&["A"], &["X"])).unwrap();
    let (out, _) = p
        .output(0)
        .apply(&[0], "f", input.as_bytes().to_vec())
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn replacement_references_must_name_groups() {
    // `$1_x` is read by the regex crate as the group named `1_x`: refused, with the fix.
    let e = replace_err("v(\\d+)", "$1_x");
    assert_eq!(e.path, "steps[0].replace.with");
    assert!(e.message.contains("\"${1}_x\""), "{e}");
    for (regex, with) in [
        ("(a)", "$2"),
        ("(a)", "${name}"),
        ("(?P<v>a)", "$w"),
        ("a", "$1"),
    ] {
        let e = replace_err(regex, with);
        assert_eq!(e.path, "steps[0].replace.with", "{regex} {with}");
        assert!(e.message.contains("does not exist"), "{e}");
    }
    assert_eq!(replaced("v(\\d+)", "${1}_x", "v12 v3"), "12_x 3_x");
    assert_eq!(replaced("(?P<v>a)", "[$v]", "bab"), "b[a]b");
    assert_eq!(replaced("(a)", "$$1 $", "ba"), "b$1 $");
    assert_eq!(replaced("(a)", "${1}$0", "a"), "aa");
    let e = plan(
        r#"{"steps":[{"move":{"regex":"(.*)\\.js","to":"$1_old.js"}}]}"#,
        &ctx(&["A"], &["X"]),
    )
    .unwrap_err();
    assert_eq!(e.path, "steps[0].move.to");
    assert!(e.message.contains("write \"${1}_old\""), "{e}");
}

#[test]
fn regexes_that_match_the_empty_string_are_refused() {
    for re in ["a*", "^", "x?", "", "(?m)$", "\\b", "a|"] {
        let e = replace_err(re, "y");
        assert_eq!(e.path, "steps[0].replace.regex", "{re}");
        assert!(e.message.contains("empty string"), "{re}: {e}");
    }
    assert_eq!(replaced("a+", "b", "caaat"), "cbt");
}

#[test]
fn content_growth_is_capped() {
    let big = "x".repeat(200);
    let too_large = |json: String, input: Vec<u8>| {
        let p = plan(&json, &ctx(&["A"], &["X"])).unwrap();
        p.output(0).apply(&[0], "dir/f.txt", input).unwrap_err()
    };
    let input = vec![b'a'; 64 * 1024];
    let literal =
        serde_json::json!({"steps": [{"replace": {"files": ["*"], "find": "a", "with": big}}]});
    let regex =
        serde_json::json!({"steps": [{"replace": {"files": ["*"], "regex": "a", "with": big}}]});
    let template =
        serde_json::json!({"variables": {"X": big}, "steps": [{"template": {"files": ["*"]}}]});
    let limit = (4 * 64 * 1024 + (1 << 20)) as u64;
    for (json, data) in [
        (literal, input.clone()),
        (regex, input),
        (template, b"${X}".repeat(16 * 1024)),
    ] {
        let e = too_large(json.to_string(), data);
        assert_eq!(e.entry, "dir/f.txt");
        assert_eq!(e.kind, TransformErrorKind::OutputTooLarge { limit });
        assert!(e.message.contains("exceed"), "{e}");
    }
    // Growth within the limit is fine.
    assert_eq!(replaced("a", "bb", "aa"), "bbbb");
}

/// The glob-dependent examples of docs/transforms.md (events/transform-*.json) over the
/// entries of events/store/.../SourceArtifact.zip keep their documented outputs.
#[test]
fn documented_glob_examples_keep_their_entries() {
    let source = [
        "package.json",
        "dist/",
        "dist/app.js",
        "dist/app.js.map",
        "config/app.yml",
        "static/logo.png",
        "README.md",
    ];
    let names = |json: &str, out: usize| -> Vec<String> {
        let outputs: &[&str] = if json.contains("outputs") {
            &["A", "B"]
        } else {
            &["A"]
        };
        let p = plan(json, &ctx(&["SourceArtifact"], outputs)).unwrap();
        source
            .iter()
            .filter_map(|n| {
                p.output(out)
                    .decide(0, n, n.ends_with('/'))
                    .unwrap()
                    .map(|e| e.name)
            })
            .collect()
    };
    let select = r#"{"steps":[{"exclude":["*.map"]},{"include":{"files":["dist/**","package.json"],"inputs":["SourceArtifact"]}}]}"#;
    assert_eq!(names(select, 0), ["package.json", "dist/", "dist/app.js"]);
    let moves = r#"{"steps":[{"exclude":["*.map","README.md"]},{"move":{"files":["config/*.yml"],"regex":"config/(.*)\\.yml","to":"conf/$1.yaml"}},{"move":{"files":["static/**"],"flatten":true,"add_prefix":"img/"}},{"move":{"strip_prefix":"dist/","add_prefix":"site/"}}]}"#;
    assert_eq!(
        names(moves, 0),
        [
            "site/package.json",
            "site/",
            "site/app.js",
            "site/conf/app.yaml",
            "site/img/logo.png"
        ]
    );
    let split = r#"{"outputs":{"A":{"from":["SourceArtifact"],"steps":[{"include":["dist/**","static/**"]},{"exclude":["*.map"]}]},"B":{"from":["SourceArtifact"],"steps":[{"include":["config/**"]},{"move":{"strip_prefix":"config/"}}]}}}"#;
    assert_eq!(names(split, 0), ["dist/", "dist/app.js", "static/logo.png"]);
    assert_eq!(names(split, 1), ["app.yml"]);
}

#[test]
fn yaml_set_refusals_name_the_entry_and_line() {
    let p = one(r#"{"steps":[{"set":{"files":["*.yml"],"pointer":"/a","value":"x"}}]}"#);
    let e = p
        .output(0)
        .apply(&[0], "cfg/app.yml", b"b: 1\na: |\n  text\n".to_vec())
        .unwrap_err();
    assert_eq!(e.entry, "cfg/app.yml");
    assert_eq!(e.kind, TransformErrorKind::Step);
    assert!(
        e.message
            .contains("line 2: block scalar (`|`) values cannot be set in place"),
        "{e}"
    );
}

#[test]
fn links_get_no_content_steps_exports_or_compression() {
    let p = one(r#"{"steps":[
            {"replace":{"files":["*"],"find":"a","with":"b"}},
            {"template":{"files":["*"]}},
            {"set":{"files":["*.json"],"pointer":"/a","value":1}},
            {"pack":{"compression":"store","level":null,"file_mode":"600","mtime":"1980-01-01T00:00:00"}},
            {"move":{"add_prefix":"x/"}},
            {"manifest":{}}
        ]}"#);
    let o = p.output(0);
    assert_eq!(o.symlinks, Symlinks::Keep);
    let f = o
        .decide_kind(0, "l.json", EntryKind::File)
        .unwrap()
        .unwrap();
    assert_eq!(f.ops.len(), 3);
    assert_eq!(f.symlink, None);
    let l = o
        .decide_kind(0, "l.json", EntryKind::Symlink)
        .unwrap()
        .unwrap();
    assert_eq!(l.name, "x/l.json");
    assert!(l.ops.is_empty());
    assert_eq!((l.method, l.level), (None, None));
    assert_eq!((l.mode, l.mtime), (Some(0o600), Some((33, 0))));
    assert_eq!(l.symlink, Some(Symlinks::Keep));
    // Listed in the manifest with the hash of its data (the target path).
    assert!(l.hash && l.needs_content(0));
    // The legacy entry point knows no links.
    assert_eq!(o.decide(0, "l.json", false).unwrap().unwrap().symlink, None);
}

#[test]
fn export_of_a_link_fails_and_modes_drop_or_refuse_links() {
    let p = one(r#"{"steps":[{"export":{"variable":"V","file":"VERSION"}}]}"#);
    let e = p
        .output(0)
        .decide_kind(0, "VERSION", EntryKind::Symlink)
        .unwrap_err();
    assert!(
        e.contains("steps[0] (export)") && e.contains("symbolic link"),
        "{e}"
    );

    let p = one(r#"{"symlinks":"drop"}"#);
    assert_eq!(
        p.output(0).decide_kind(0, "l", EntryKind::Symlink),
        Ok(None)
    );
    assert!(p
        .output(0)
        .decide_kind(0, "f", EntryKind::File)
        .unwrap()
        .is_some());
    let l = layout_output_kinds(
        p.output(0),
        &[vec![("l", EntryKind::Symlink), ("f", EntryKind::File)]],
    )
    .unwrap();
    assert_eq!((l.entries.len(), l.dropped), (1, 1));

    let p = one(r#"{"symlinks":"fail"}"#);
    let e = layout_output_kinds(p.output(0), &[vec![("a/l", EntryKind::Symlink)]]).unwrap_err();
    assert!(e.contains("\"a/l\"") && e.contains("\"fail\""), "{e}");
    // Excluded links never reach the symlink rule.
    let p = one(r#"{"symlinks":"fail","steps":[{"exclude":["*.lnk"]}]}"#);
    assert_eq!(
        p.output(0).decide_kind(0, "x.lnk", EntryKind::Symlink),
        Ok(None)
    );

    let e = plan(r#"{"symlinks":"follow"}"#, &ctx(&["A"], &["X"])).unwrap_err();
    assert_eq!(e.path, "symlinks");
}

#[test]
fn entries_under_a_kept_link_are_refused() {
    let p = one("");
    let kinds = |v: &[(&'static str, EntryKind)]| vec![v.to_vec()];
    let e = layout_output_kinds(
        p.output(0),
        &kinds(&[("d", EntryKind::Symlink), ("d/x", EntryKind::File)]),
    )
    .unwrap_err();
    assert!(
        e.contains("\"d/x\"") && e.contains("symbolic link \"d\""),
        "{e}"
    );
    // Letter case does not matter: case-insensitive file systems follow `D`.
    let e = layout_output_kinds(
        p.output(0),
        &kinds(&[("D", EntryKind::Symlink), ("d/e/x", EntryKind::File)]),
    )
    .unwrap_err();
    assert!(e.contains("\"d/e/x\""), "{e}");
    // Siblings sharing a prefix are fine.
    layout_output_kinds(
        p.output(0),
        &kinds(&[("d", EntryKind::Symlink), ("dx/y", EntryKind::File)]),
    )
    .unwrap();
    // Dropped links do not count.
    let p = one(r#"{"symlinks":"drop"}"#);
    layout_output_kinds(
        p.output(0),
        &kinds(&[("d", EntryKind::Symlink), ("d/x", EntryKind::File)]),
    )
    .unwrap();
}

#[test]
fn a_trace_names_the_steps_an_entry_meets_and_the_one_that_drops_it() {
    let p = one(r#"{"variables":{"V":"1"},"steps":[
            {"move":{"files":["src/**"],"strip_prefix":"src/"}},
            {"exclude":["**/*.map"]},
            {"template":{"files":["*.json"]}},
            {"pack":{"files":["*.json"],"level":9}}]}"#);
    let o = p.output(0);
    assert_eq!(o.step_count(), 4);
    assert_eq!(o.step_label(2), "steps[2] (template)");
    let kept = o.trace_kind(0, "src/app.json", EntryKind::File);
    assert_eq!(kept.matched, [0, 2, 3]);
    let ep = kept.decided.unwrap().unwrap();
    assert_eq!(
        (ep.name.as_str(), ep.ops.as_slice()),
        ("app.json", &[2][..])
    );
    // The decision is the untraced one.
    assert_eq!(
        o.decide_kind(0, "src/app.json", EntryKind::File)
            .unwrap()
            .unwrap(),
        ep
    );
    let dropped = o.trace_kind(0, "src/app.js.map", EntryKind::File);
    assert_eq!(dropped.matched, [0, 1]);
    assert_eq!(dropped.decided, Ok(None));
    let untouched = o.trace_kind(0, "README.md", EntryKind::File);
    assert!(untouched.matched.is_empty());
}

/// Step hits of every output of `p` over one input holding `names`.
fn hits_over(p: &Plan, names: &[&str]) -> Vec<Vec<u64>> {
    let list: Vec<(&str, bool)> = names.iter().map(|n| (*n, n.ends_with('/'))).collect();
    p.outputs()
        .iter()
        .map(|op| {
            let sources = vec![list.clone(); op.sources.len()];
            layout_output(op, &sources).unwrap().step_hits
        })
        .collect()
}

#[test]
fn steps_that_match_nothing_fail_unless_optional() {
    let names = ["app/config.json", "app/main.js", "package.json"];
    // A mistyped glob: refused, naming the step, its globs and the output.
    let p = one(r#"{"steps":[{"exclude":["*.map"]},{"template":{"files":["**/*.jsn"]}}]}"#);
    let e = p.check_steps_matched(&hits_over(&p, &names)).unwrap_err();
    assert_eq!(e.path, "steps[1].template.files");
    assert!(
        e.message.contains(r#"output "X""#) && e.message.contains(r#"["**/*.jsn"]"#),
        "{e}"
    );
    // The exclude matched nothing too, and that is fine; so is an optional step.
    let p = one(r#"{"steps":[{"template":{"files":["**/*.jsn"],"optional":true}}]}"#);
    p.check_steps_matched(&hits_over(&p, &names)).unwrap();
    for (step, path) in [
        (
            r#"{"replace":{"files":["*.txt"],"find":"a","with":"b"}}"#,
            "steps[0].replace.files",
        ),
        (
            r#"{"set":{"files":["cfg.json"],"pointer":"/a","value":1}}"#,
            "steps[0].set.files",
        ),
        (
            r#"{"export":{"variable":"V","file":"VERSION"}}"#,
            "steps[0].export.file",
        ),
    ] {
        let p = one(&format!(r#"{{"steps":[{step}]}}"#));
        let e = p.check_steps_matched(&hits_over(&p, &names)).unwrap_err();
        assert_eq!(e.path, path, "{e}");
        let optional = step.replacen("}}", r#","optional":true}}"#, 1);
        let p = one(&format!(r#"{{"steps":[{optional}]}}"#));
        p.check_steps_matched(&hits_over(&p, &names)).unwrap();
    }
    // An export with a default is optional; a moved file is matched by its new name.
    let p = one(r#"{"steps":[{"export":{"variable":"V","file":"VERSION","default":"0"}}]}"#);
    p.check_steps_matched(&hits_over(&p, &names)).unwrap();
    let p = one(
        r#"{"steps":[{"move":{"strip_prefix":"app/"}},{"export":{"variable":"V","file":"app/config.json"}}]}"#,
    );
    let e = p.check_steps_matched(&hits_over(&p, &names)).unwrap_err();
    assert!(e.message.contains("renamed or dropped"), "{e}");
    // An optional export whose file never came sets no variable.
    let p = one(r#"{"steps":[{"export":{"variable":"V","file":"VERSION","optional":true}}]}"#);
    assert_eq!(p.output(0).missing_exports(&[]).unwrap(), []);
}

#[test]
fn a_shared_step_needs_a_match_in_some_output() {
    let c = ctx(&["A"], &["Web", "Api"]);
    let routes = r#""outputs":{"Web":{"from":["A"],"steps":[{"include":["web/**"]}]},"Api":{"from":["A"],"steps":[{"include":["api/**"]}]}}"#;
    let names = ["web/index.html", "api/config.json"];
    // A top-level step that matches somewhere is fine; one matching nowhere is not.
    let p = plan(
        &format!(r#"{{"steps":[{{"template":{{"files":["api/*.json"]}}}}],{routes}}}"#),
        &c,
    )
    .unwrap();
    p.check_steps_matched(&hits_over(&p, &names)).unwrap();
    let p = plan(
        &format!(r#"{{"steps":[{{"template":{{"files":["*.yml"]}}}}],{routes}}}"#),
        &c,
    )
    .unwrap();
    let e = p.check_steps_matched(&hits_over(&p, &names)).unwrap_err();
    assert!(e.message.contains(r#"any output ["Web", "Api"]"#), "{e}");
    // An output's own step must match in that output.
    let own = r#"{"outputs":{"Web":{"from":["A"],"steps":[{"include":["web/**"]},{"template":{"files":["**/*.json"]}}]},"Api":{"from":["A"]}}}"#;
    let p = plan(own, &c).unwrap();
    let e = p.check_steps_matched(&hits_over(&p, &names)).unwrap_err();
    assert_eq!(e.path, "outputs.Web.steps[1].template.files");
    assert!(e.message.contains(r#"output "Web""#), "{e}");
}

#[test]
fn yaml_parameters_compile_like_json() {
    let yaml = r#"
# yaml-language-server: $schema=docs/user-parameters.schema.json
variables:
  VERSION: "1.10"
steps:
  - exclude: ["*.map"]
  - template:
      files: ["**/*.json"]
  - set:
      files: [template-config.json]
      pointer: /Parameters/ImageTag
      value: v${VERSION}
"#;
    let json = r#"{"variables":{"VERSION":"1.10"},"steps":[{"exclude":["*.map"]},{"template":{"files":["**/*.json"]}},{"set":{"files":["template-config.json"],"pointer":"/Parameters/ImageTag","value":"v${VERSION}"}}]}"#;
    assert_eq!(
        PlanSpec::parse(Some(yaml)).unwrap(),
        PlanSpec::parse(Some(json)).unwrap()
    );
    // Anchors and aliases work within the budget.
    let anchored = "steps:\n  - exclude: &maps [\"*.map\", \"*.map.gz\"]\n  - include: {files: [\"**\"]}\n  - exclude: *maps\n";
    let spec = PlanSpec::parse(Some(anchored)).unwrap();
    assert_eq!(spec.steps[0], spec.steps[2]);
}

#[test]
fn yaml_parameter_errors_name_the_field() {
    let c = ctx(&["A"], &["X"]);
    let cases = [
        // A number where a string is expected: the path and a quoting hint.
        (
            "variables:\n  VERSION: 1.10\n",
            "variables.VERSION",
            "quote",
        ),
        (
            "steps:\n  - replace: {files: [a], find: x}\n",
            "steps[0].replace",
            "with",
        ),
        (
            "steps:\n  - exclude: 3\n",
            "steps[0].exclude",
            "list of globs",
        ),
        ("steps: [\n", "(document)", "not valid YAML"),
        ("just a string", "(document)", "YAML mapping"),
        ("a: 1\n---\nb: 2\n", "(document)", "2 YAML documents"),
        ("stepz: []\n", "stepz", "unknown field `stepz`"),
        ("verify: true\nverify: false\n", "(document)", "duplicate"),
    ];
    for (yaml, path, words) in cases {
        let e = plan(yaml, &c).unwrap_err();
        assert_eq!(e.path, path, "{yaml:?}: {e}");
        assert!(e.message.contains(words), "{yaml:?}: {e}");
    }
    // Billion laughs: refused from the event stream, not expanded.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    let e = plan(&bomb, &c).unwrap_err();
    assert!(e.message.contains("aliases expand"), "{e}");
}

#[test]
fn normalize_line_endings_and_bom() {
    let apply = |json: &str, name: &str, data: &[u8]| {
        let p = one(json);
        let ep = p.output(0).decide(0, name, false).unwrap().unwrap();
        p.output(0)
            .apply(&ep.ops, name, data.to_vec())
            .map(|(d, _)| d)
    };
    let crlf_bom = b"\xEF\xBB\xBF#!/bin/sh\r\necho a\r\necho b\rc\n";
    let lf = apply(
        r#"{"steps":[{"normalize":{"files":["*.sh"]}}]}"#,
        "start.sh",
        crlf_bom,
    );
    assert_eq!(lf.unwrap(), b"#!/bin/sh\necho a\necho b\rc\n");
    let crlf = apply(
        r#"{"steps":[{"normalize":{"files":["*.bat"],"line_endings":"crlf","strip_bom":false}}]}"#,
        "run.bat",
        b"\xEF\xBB\xBFa\nb\r\nc",
    );
    assert_eq!(crlf.unwrap(), b"\xEF\xBB\xBFa\r\nb\r\nc");
    let kept = apply(
        r#"{"steps":[{"normalize":{"files":["*.json"],"line_endings":"keep"}}]}"#,
        "a.json",
        b"\xEF\xBB\xBF{}\r\n",
    );
    assert_eq!(kept.unwrap(), b"{}\r\n");
    // Binary (or UTF-16) content is refused, naming the entry and the step.
    let e = apply(
        r#"{"steps":[{"normalize":{"files":["*.txt"]}}]}"#,
        "u16.txt",
        b"\xFF\xFEa\x00\r\x00\n\x00",
    )
    .unwrap_err();
    assert_eq!(
        (e.entry.as_str(), e.step.as_str()),
        ("u16.txt", "steps[0] (normalize)")
    );
    assert!(e.message.contains("NUL byte at offset 3"), "{e}");
    // Fields are checked.
    let e = plan(
        r#"{"steps":[{"normalize":{"files":["*"],"line_endings":"cr"}}]}"#,
        &ctx(&["A"], &["X"]),
    )
    .unwrap_err();
    assert_eq!(e.path, "steps[0].normalize.line_endings");
}

#[test]
fn when_variable_tests_turn_steps_on_and_off() {
    let stage = |s: &str| {
        format!(
            r#"{{"variables":{{"STAGE":"{s}"}},"steps":[
            {{"exclude":["appspec-*.yml"],"when":{{"variable":"STAGE","equals":"dev"}}}},
            {{"move":{{"regex":"appspec-prod\\.yml","to":"appspec.yml"}},"when":{{"variable":"STAGE","in":["prod","live"]}}}},
            {{"add":{{"path":"STAGE","text":"${{STAGE}}"}},"when":{{"variable":"STAGE","matches":"^(prod|live)$"}}}},
            {{"add":{{"path":"STAGE","text":"other"}},"when":{{"variable":"STAGE","not_equals":"prod"}}}}
        ]}}"#
        )
    };
    let p = one(&stage("prod"));
    assert_eq!(
        name_of(&p, "appspec-prod.yml").as_deref(),
        Some("appspec.yml")
    );
    let adds: Vec<_> = p.output(0).extras().into_iter().collect();
    assert!(
        matches!(adds[..], [Extra::Add { data: b"prod", .. }]),
        "{adds:?}"
    );
    let p = one(&stage("dev"));
    assert_eq!(name_of(&p, "appspec-prod.yml"), None);
    assert!(matches!(
        p.output(0).extras()[..],
        [Extra::Add { data: b"other", .. }]
    ));
    // An inactive step must not match anything, and its export is not looked for.
    let p = one(
        r#"{"variables":{"S":"a"},"steps":[{"template":{"files":["*.none"]},"when":{"variable":"S","equals":"b"}},{"export":{"variable":"V","file":"nope"},"when":{"variable":"S","equals":"b"}}]}"#,
    );
    p.check_steps_matched(&hits_over(&p, &["x.txt"])).unwrap();
    assert_eq!(p.output(0).missing_exports(&[]).unwrap(), []);
}

#[test]
fn when_entry_tests_are_resolved_from_the_inputs() {
    let json = r#"{"steps":[
        {"add":{"path":"appspec.yml","text":"default"},"when":{"not_exists":"appspec.yml"}},
        {"exclude":["legacy/**"],"when":{"exists":"modern/**"}}
    ]}"#;
    let mut p = one(json);
    assert!(p.has_entry_conditions());
    let listing = ["modern/a.txt", "legacy/b.txt"];
    p.resolve_conditions(|i, g| {
        assert_eq!(i, 0);
        listing.iter().any(|n| g.is_match(n, false))
    });
    assert_eq!(name_of(&p, "legacy/b.txt"), None);
    assert_eq!(p.output(0).extras().len(), 1);
    let mut p = one(json);
    p.resolve_conditions(|_, g| {
        ["appspec.yml", "legacy/b.txt"]
            .iter()
            .any(|n| g.is_match(n, false))
    });
    assert_eq!(name_of(&p, "legacy/b.txt").as_deref(), Some("legacy/b.txt"));
    assert!(p.output(0).extras().is_empty());
}

#[test]
fn when_errors_name_the_field() {
    let c = ctx(&["A"], &["X"]);
    let cases = [
        (
            r#"{"steps":[{"exclude":["a"],"when":{"variable":"NOPE","equals":"x"}}]}"#,
            "steps[0].when.variable",
            "not defined",
        ),
        (
            r#"{"variables":{"S":"a"},"steps":[{"exclude":["a"],"when":{"variable":"S"}}]}"#,
            "steps[0].when",
            "exactly one",
        ),
        (
            r#"{"variables":{"S":"a"},"steps":[{"exclude":["a"],"when":{"variable":"S","equals":"a","in":["a"]}}]}"#,
            "steps[0].when",
            "exactly one",
        ),
        (
            r#"{"steps":[{"exclude":["a"],"when":{"equals":"x"}}]}"#,
            "steps[0].when.equals",
            "give `variable`",
        ),
        (
            r#"{"steps":[{"exclude":["a"],"when":{}}]}"#,
            "steps[0].when",
            "tests nothing",
        ),
        (
            r#"{"variables":{"S":"a"},"steps":[{"exclude":["a"],"when":{"variable":"S","matches":"("}}]}"#,
            "steps[0].when.matches",
            "invalid regex",
        ),
        (
            r#"{"steps":[{"exclude":["a"],"when":{"exists":"["}}]}"#,
            "steps[0].when.exists",
            "glob",
        ),
        (
            r#"{"steps":[{"exclude":["a"],"when":{"exist":"a"}}]}"#,
            "steps[0].when.exist",
            "unknown field",
        ),
        (
            r#"{"steps":[{"exclude":["a"],"template":{"files":["a"]}}]}"#,
            "steps[0]",
            "second one",
        ),
        (
            r#"{"steps":[{"when":{"exists":"a"}}]}"#,
            "steps[0]",
            "needs a kind",
        ),
        (
            r#"{"steps":[{"tempalte":{"files":["a"]}}]}"#,
            "steps[0].tempalte",
            "unknown variant",
        ),
        (
            r#"{"steps":[{"template":{"fils":["a"]}}]}"#,
            "steps[0].template.fils",
            "unknown field",
        ),
    ];
    for (json, path, words) in cases {
        let e = plan(json, &c).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
        assert!(e.message.contains(words), "{json}: {e}");
    }
}

#[test]
fn plan_files_are_referenced_and_merged() {
    let user = PlanSpec::parse(Some(
        r#"{"plan_file":"Src::ci/plan.yml","variables":{"V":"2"}}"#,
    ))
    .unwrap();
    let file = user.plan_file().unwrap().unwrap();
    assert_eq!(
        (file.input.as_str(), file.path.as_str()),
        ("Src", "ci/plan.yml")
    );
    let spec = user
        .from_plan_file(
            &file,
            "variables: {V: '1', W: '1'}\nsteps:\n  - exclude: [ci/]\n",
        )
        .unwrap();
    assert_eq!(spec.variables["V"], "2");
    assert_eq!(spec.variables["W"], "1");
    assert_eq!(spec.steps.len(), 1);
    // Errors in the file name it.
    let e = user
        .from_plan_file(&file, "steps:\n  - tempate: {files: [a]}\n")
        .unwrap_err();
    assert_eq!(e.path, "Src::ci/plan.yml steps[0].tempate");
    let e = user
        .from_plan_file(&file, "plan_file: Src::other.yml\n")
        .unwrap_err();
    assert!(e.message.contains("another"), "{e}");
    // Only variables beside it; a well-formed reference.
    for (json, words) in [
        (r#"{"plan_file":"Src::p.yml","steps":[]}"#, ""),
        (
            r#"{"plan_file":"Src::p.yml","steps":[{"exclude":["a"]}]}"#,
            "only add `variables`",
        ),
        (r#"{"plan_file":"ci/plan.yml"}"#, "INPUT::PATH"),
        (r#"{"plan_file":"Src::../plan.yml"}"#, ".."),
        (r#"{"plan_file":"::plan.yml"}"#, "names no file"),
    ] {
        let r = PlanSpec::parse(Some(json)).unwrap().plan_file();
        if words.is_empty() {
            r.unwrap();
        } else {
            let e = r.unwrap_err();
            assert_eq!(e.path, "plan_file");
            assert!(e.message.contains(words), "{json}: {e}");
        }
    }
}

/// Editors associate a JSON document with its schema through a `$schema` key: plans
/// inline and in files may carry one, which changes nothing; it must be a string.
#[test]
fn a_schema_key_is_accepted_and_ignored() {
    let c = ctx(&["A"], &["X"]);
    let with = r#"{"$schema":"./artifact-plan.schema.json","steps":[{"exclude":["*.map"]}]}"#;
    let without = r#"{"steps":[{"exclude":["*.map"]}]}"#;
    assert_eq!(
        format!("{:?}", plan(with, &c).unwrap().output(0)),
        format!("{:?}", plan(without, &c).unwrap().output(0))
    );
    let user = PlanSpec::parse(Some(
        r#"{"$schema":"s.json","plan_file":"Src::ci/plan.json","variables":{"V":"2"}}"#,
    ))
    .unwrap();
    let file = user.plan_file().unwrap().unwrap();
    let spec = user
        .from_plan_file(&file, r#"{"$schema": "./plan.schema.json", "steps": []}"#)
        .unwrap();
    assert_eq!(spec.variables["V"], "2");
    let e = PlanSpec::parse(Some(r#"{"$schema": 3}"#)).unwrap_err();
    assert_eq!(e.path, "$schema");
}

#[test]
fn deeply_nested_yaml_is_refused_not_overflowing() {
    let deep = format!("steps: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    // yaml-rust2 limits flow nesting itself; block nesting is counted here.
    let e = PlanSpec::parse(Some(&deep)).unwrap_err();
    assert!(e.message.contains("recursion limit"), "{e}");
    let deep_block: String = (0..2000)
        .map(|i| format!("{}- \n", "  ".repeat(i)))
        .collect();
    let e = PlanSpec::parse(Some(&format!("steps:\n{deep_block}"))).unwrap_err();
    assert!(e.message.contains("nests deeper"), "{e}");
}

/// A YAML entry nested thousands of levels deep (a hostile artifact) is refused by
/// `set`, not a stack overflow that would kill the function before it reports.
#[test]
fn set_on_a_deeply_nested_yaml_entry_is_refused() {
    let p = one(r#"{"steps":[{"set":{"files":["*.yml"],"pointer":"/a","value":"x"}}]}"#);
    let deep: String = (0..5000)
        .map(|i| format!("{}- \n", "  ".repeat(i)))
        .collect();
    let text = format!("a: 1\nb:\n{deep}");
    let e = p
        .output(0)
        .apply(&[0], "deep.yml", text.into_bytes())
        .unwrap_err();
    assert!(
        e.message.contains("nests deeper") || e.message.contains("recursion"),
        "{e}"
    );
}

#[test]
fn select_by_type_and_size() {
    let info = |name, kind, size, executable| EntryInfo {
        name,
        kind,
        size,
        executable,
        inner_of: None,
    };
    let entries = vec![
        info("bin/", EntryKind::Dir, 0, false),
        info("bin/server", EntryKind::File, 5_000_000, true),
        info("bin/run.sh", EntryKind::File, 100, true),
        info("bin/current", EntryKind::Symlink, 6, false),
        info("data/big.csv", EntryKind::File, 50_000_000, false),
        info("README.md", EntryKind::File, 2_000, false),
    ];
    let kept = |json: &str| -> Vec<String> {
        let p = one(json);
        layout_output_entries(p.output(0), std::slice::from_ref(&entries))
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.plan.name)
            .collect()
    };
    assert_eq!(
        kept(r#"{"steps":[{"include":{"type":"executable"}}]}"#),
        ["bin/server", "bin/run.sh"]
    );
    assert_eq!(
        kept(r#"{"steps":[{"exclude":{"files":["data/"],"size":{"min":10000000}}}]}"#),
        [
            "bin/",
            "bin/server",
            "bin/run.sh",
            "bin/current",
            "README.md"
        ]
    );
    assert_eq!(
        kept(r#"{"steps":[{"include":{"type":["directory","symlink"]}}]}"#),
        ["bin/", "bin/current"]
    );
    assert_eq!(
        kept(r#"{"steps":[{"include":{"files":["bin/"],"size":{"max":1000}}}]}"#),
        ["bin/run.sh", "bin/current"]
    );
    let c = ctx(&["A"], &["X"]);
    for (json, path) in [
        (r#"{"steps":[{"include":{}}]}"#, "steps[0].include"),
        (
            r#"{"steps":[{"include":{"size":{}}}]}"#,
            "steps[0].include.size",
        ),
        (
            r#"{"steps":[{"include":{"size":{"min":5,"max":4}}}]}"#,
            "steps[0].include.size",
        ),
        (
            r#"{"steps":[{"include":{"type":"socket"}}]}"#,
            "steps[0].include",
        ),
    ] {
        assert_eq!(plan(json, &c).unwrap_err().path, path, "{json}");
    }
}

/// Found in review: aliases of anchors that nest deep stack up in the loaded tree,
/// though no event nests deep; the depth limit counts the expanded height.
#[test]
fn aliases_cannot_stack_nesting_past_the_depth_limit() {
    let nest =
        |depth: usize, leaf: &str| format!("{}{leaf}{}", "[".repeat(depth), "]".repeat(depth));
    let mut doc = format!("a0: &a0 {}\n", nest(100, "0"));
    for i in 1..40 {
        doc.push_str(&format!(
            "a{i}: &a{i} {}\n",
            nest(100, &format!("*a{}", i - 1))
        ));
    }
    let e = PlanSpec::parse(Some(&doc)).unwrap_err();
    assert!(e.message.contains("nests deeper"), "{e}");
    // Shallow aliases are fine.
    let ok = "variables: &v {A: '1'}\nsteps:\n  - exclude: &g ['*.map']\n  - exclude: *g\n";
    PlanSpec::parse(Some(ok)).unwrap();
}

/// Found in review: a step its `when` turns off may use variables only its stage
/// defines; it is still validated otherwise.
#[test]
fn a_step_turned_off_may_name_variables_its_stage_lacks() {
    let p = one(
        r#"{"variables":{"STAGE":"dev"},"steps":[{"add":{"path":"prod.env","text":"URL=${PROD_URL}"},"when":{"variable":"STAGE","equals":"prod"}}]}"#,
    );
    assert!(p.output(0).extras().is_empty());
    let e = plan(
        r#"{"variables":{"STAGE":"dev"},"steps":[{"add":{"path":"../x","text":"${PROD_URL}"},"when":{"variable":"STAGE","equals":"prod"}}]}"#,
        &ctx(&["A"], &["X"]),
    )
    .unwrap_err();
    assert_eq!(e.path, "steps[0].add.path");
}
