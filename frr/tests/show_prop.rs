//! FRR's `show ... json` outputs bgplb reads, as captured from FRR 7.5, 8.4 and 10.3, mutated at
//! random (values replaced by other types, keys dropped, text cut short): the parsers give a
//! value or an error naming the command, never a panic; and the release is read from any text.

use bgplb_frr::show::{self, NeighborDetail, ReceivedRoutes, Summary, Table};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

const OUTPUTS: &[&str] = &[
    include_str!("fixtures/summary.json"),
    include_str!("fixtures/neighbors.json"),
    include_str!("fixtures/table-v4.json"),
    include_str!("fixtures/table-v6.json"),
    include_str!("fixtures/7.5/summary.json"),
    include_str!("fixtures/7.5/neighbors.json"),
    include_str!("fixtures/7.5/table.json"),
    include_str!("fixtures/7.5/received-routes.json"),
    include_str!("fixtures/10.3/summary.json"),
    include_str!("fixtures/10.3/neighbors.json"),
    include_str!("fixtures/10.3/table.json"),
    include_str!("fixtures/10.3/received-routes.json"),
];

/// What a mutation puts in place of a value.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,12}".prop_map(Value::from),
        Just(Value::Array(vec![])),
        Just(Value::Object(Default::default())),
    ]
}

/// Replaces (or drops) the `n`-th value met walking `v` depth-first.
fn mutate(v: &mut Value, n: &mut usize, with: &Value, drop: bool) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if *n == 0 && drop {
                    map.remove(&k);
                    return true;
                }
                if mutate(map.get_mut(&k).expect("key"), n, with, drop) {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => items.iter_mut().any(|i| mutate(i, n, with, drop)),
        _ => false,
    }
}

fn parse_all(text: &str) {
    let _ = show::parse::<Summary>("show bgp summary json", text);
    let _ = show::parse::<BTreeMap<String, NeighborDetail>>("show bgp neighbors json", text);
    let _ = show::parse::<Table>("show bgp ipv4 unicast json", text);
    let _ = show::parse::<ReceivedRoutes>("show bgp ... received-routes json", text);
    let _ = text.parse::<bgplb_frr::FrrVersion>();
    let _ = bgplb_frr::FrrVersion::from_output(text);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_outputs_never_make_a_parser_panic(
        which in 0..OUTPUTS.len(),
        mutations in prop::collection::vec((0usize..400, replacement(), any::<bool>()), 1..6),
        cut in prop::option::of(0usize..20000),
    ) {
        let mut v: Value = serde_json::from_str(OUTPUTS[which]).unwrap();
        for (at, with, drop) in &mutations {
            let mut n = *at;
            mutate(&mut v, &mut n, with, *drop);
        }
        let text = serde_json::to_string_pretty(&v).unwrap();
        parse_all(&text);
        if let Some(cut) = cut {
            let at = text.floor_char_boundary(cut.min(text.len()));
            parse_all(&text[..at]);
        }
    }
}
