//! The network built for each released configuration registers exactly the keys and shapes of the
//! official checkpoints (golden/gpen-keys), and the configuration is inferred back from them.

mod common;
use common::*;
use gpen_studio::checkpoint::expected_shapes;
use gpen_studio::restore::checkpoint::infer_config;
use gpen_studio::restore::network::{FullGenerator, GpenConfig};
use tch::{Device, nn};

const RELEASED: [(&str, GpenConfig); 4] = [
    ("256-cm1-n0.5", GpenConfig::BFR_256),
    ("512-cm2-n1", GpenConfig::BFR_512),
    ("1024-cm2-n1", GpenConfig::BFR_1024),
    ("2048-cm2-n1", GpenConfig::BFR_2048),
];

fn table(name: &str) -> std::collections::BTreeMap<String, Vec<i64>> {
    read_key_table(&golden().join(format!("gpen-keys/{name}.tsv")))
}

#[test]
fn released_configurations_register_exactly_the_official_keys() {
    for (name, config) in RELEASED {
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = FullGenerator::new(&vs.root(), config);
        let ours = expected_shapes(&vs);
        let want = table(name);
        let missing: Vec<_> = want.keys().filter(|k| !ours.contains_key(*k)).collect();
        let extra: Vec<_> = ours.keys().filter(|k| !want.contains_key(*k)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{name}: missing {missing:?}, extra {extra:?}");
        for (key, shape) in &want {
            assert_eq!(&ours[key], shape, "{name}: shape of {key}");
        }
    }
}

#[test]
fn parameter_count_agrees_with_the_key_tables() {
    for (name, config) in RELEASED {
        let params: i64 = table(name).iter().filter(|(k, _)| !k.ends_with(".kernel")).map(|(_, s)| s.iter().product::<i64>()).sum();
        assert_eq!(config.parameter_count(), params, "{name}");
    }
}

#[test]
fn configuration_is_inferred_from_shapes_alone() {
    for (name, config) in RELEASED {
        assert_eq!(infer_config(&table(name)), Ok(config), "{name}");
    }
}

#[test]
fn inference_refuses_a_table_that_is_not_gpen() {
    let mut t = table("512-cm2-n1");
    t.retain(|k, _| !k.starts_with("ecd"));
    assert!(infer_config(&t).unwrap_err().to_string().contains("encoder"));
    let mut t = table("512-cm2-n1");
    t.remove("generator.input.input");
    assert!(infer_config(&t).unwrap_err().to_string().contains("generator.input.input"));
}
