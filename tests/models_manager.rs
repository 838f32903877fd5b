//! The model manager against a local HTTP server on 127.0.0.1: verified downloads that land with
//! their SHA-256 recorded, resumed downloads, rejected wrong files and web pages, the no-network
//! message, `verify` noticing a changed file, and `import`.

mod common;

use common::server::{Behaviour, PAGE, serve};
use gpen_studio::restore::network::GpenConfig;
use gpen_studio::weights::{self, Catalogue, DownloadOptions, ModelEntry, ModelError, ModelStore, Progress};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The golden generator's configuration (../shared/golden/gpen-64/config.json).
const GOLDEN: GpenConfig = GpenConfig::new(64, 1, 0.125);
fn golden_bytes() -> Vec<u8> {
    std::fs::read(common::golden_weights()).unwrap()
}

fn entry(url: &str, config: GpenConfig) -> ModelEntry {
    ModelEntry::downloadable("GPEN-Test-64", "GPEN-Test-64.pth", url, config, "the golden test generator")
}

fn quiet() -> DownloadOptions {
    DownloadOptions { progress: Progress::Hidden, cancel: None, timeout: Duration::from_secs(10) }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_full_download_validates_and_lands_with_its_hash_recorded() {
    let server = serve(golden_bytes(), vec![Behaviour::Serve]);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"));
    let entry = entry(&server.url, GOLDEN);
    let path = weights::download(&entry, &store, &quiet()).unwrap();
    assert_eq!(path, store.dir.join("GPEN-Test-64.pth"));
    assert_eq!(std::fs::read(&path).unwrap(), golden_bytes());
    let (sha, bytes) = weights::sha256_file(&common::golden_weights()).unwrap();
    let record = &store.checksums().unwrap()["GPEN-Test-64.pth"];
    assert_eq!((record.sha256.as_str(), record.bytes, record.config), (sha.as_str(), bytes, Some(GOLDEN)));
    assert_eq!(files_in(&store.dir), ["GPEN-Test-64.pth", "checksums.json"], "no .part left");
    // The installed file loads as the generator it is.
    gpen_studio::restore::checkpoint::load_generator(&path, tch::Device::Cpu).unwrap();
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let body = golden_bytes();
    let half = body.len() / 2;
    let server = serve(body.clone(), vec![Behaviour::DropAfter(half), Behaviour::Serve]);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path());
    let entry = entry(&server.url, GOLDEN);

    let err = weights::download(&entry, &store, &quiet()).unwrap_err();
    assert!(matches!(err, ModelError::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("run the same command again to resume"), "{err}");
    let part = store.part_of(&entry);
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept <= half as u64, "kept {kept} of {half}");
    assert!(!store.path_of(&entry).exists(), "nothing under the final name");

    weights::download(&entry, &store, &quiet()).unwrap();
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert!(!requests[0].contains("range:"), "{}", requests[0]);
    assert!(requests[1].contains(&format!("range: bytes={kept}-")), "{}", requests[1]);
    assert_eq!(std::fs::read(store.path_of(&entry)).unwrap(), body, "the resumed file is identical");
    assert!(!part.exists());
}

#[test]
fn a_server_that_ignores_the_range_restarts_the_download() {
    let body = golden_bytes();
    let server = serve(body.clone(), vec![Behaviour::IgnoreRange]);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path());
    let entry = entry(&server.url, GOLDEN);
    // A stale partial of other bytes: appending the full answer to it would corrupt the file.
    std::fs::write(store.part_of(&entry), vec![0xAB; 1000]).unwrap();
    weights::download(&entry, &store, &quiet()).unwrap();
    assert!(server.requests.lock().unwrap()[0].contains("range: bytes=1000-"));
    assert_eq!(std::fs::read(store.path_of(&entry)).unwrap(), body);
}

fn assert_nothing_landed(store: &ModelStore, entry: &ModelEntry) {
    assert!(!store.path_of(entry).exists(), "no installed file");
    assert!(!store.part_of(entry).exists(), "wrong content is not kept as a .part");
    assert!(store.checksums().unwrap().is_empty(), "no hash recorded");
}

#[test]
fn a_wrong_file_is_rejected_and_nothing_lands() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"));

    // The MTCNN output network: a TorchScript archive, not a GPEN state dict.
    let onet = std::fs::read(common::repo_root().join("models/mtcnn/onet.pt")).unwrap();
    let server = serve(onet, vec![Behaviour::Serve]);
    let e = entry(&server.url, GOLDEN);
    let err = weights::download(&e, &store, &quiet()).unwrap_err();
    assert!(matches!(err, ModelError::Invalid { .. }), "{err}");
    assert!(err.is_wrong_content() && err.to_string().contains("GPEN generator"), "{err}");
    assert_nothing_landed(&store, &e);

    // A discriminator (GPEN-BFR-*-D.pth) written by torch.
    let disc = dir.path().join("disc.pth");
    common::run_torch_python(
        "import sys, torch\n\
         sd = {'convs.0.0.weight': torch.zeros(64, 3, 1, 1), 'final_conv.0.weight': torch.zeros(512, 513, 3, 3),\n\
               'final_linear.0.weight': torch.zeros(512, 8192), 'final_linear.1.weight': torch.zeros(1, 512)}\n\
         torch.save(sd, sys.argv[1])",
        &[disc.as_path()],
    );
    let server = serve(std::fs::read(&disc).unwrap(), vec![Behaviour::Serve]);
    let e = entry(&server.url, GOLDEN);
    let err = weights::download(&e, &store, &quiet()).unwrap_err();
    assert!(err.to_string().contains("discriminator"), "{err}");
    assert_nothing_landed(&store, &e);

    // A good GPEN generator, but not the configuration the catalogue promises.
    let server = serve(golden_bytes(), vec![Behaviour::Serve]);
    let e = entry(&server.url, GpenConfig::BFR_256);
    let err = weights::download(&e, &store, &quiet()).unwrap_err();
    assert!(matches!(err, ModelError::WrongConfig { .. }), "{err}");
    assert!(err.to_string().contains("GPEN 64") && err.to_string().contains("GPEN 256"), "{err}");
    assert_nothing_landed(&store, &e);
}

#[test]
fn a_web_page_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path());
    // Announced as HTML, and disguised as a binary file (found by its content).
    for content_type in ["text/html; charset=utf-8", "application/octet-stream"] {
        let server = serve(PAGE.to_vec(), vec![Behaviour::Typed(content_type)]);
        let e = entry(&server.url, GOLDEN);
        let err = weights::download(&e, &store, &quiet()).unwrap_err();
        assert!(matches!(err, ModelError::WebPage { .. }), "{content_type}: {err}");
        assert!(err.to_string().contains("got a web page, not a model"), "{err}");
        assert_nothing_landed(&store, &e);
    }
}

#[test]
fn no_network_gives_the_manual_alternative() {
    // A port that was just free: connecting is refused.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/robin/models/GPEN-Test-64.pth");
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path());
    let e = entry(&url, GOLDEN);
    let err = weights::download(&e, &store, &quiet()).unwrap_err();
    assert!(matches!(err, ModelError::NoNetwork { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&url), "names the URL: {text}");
    assert!(text.contains(&store.path_of(&e).display().to_string()), "says where to put the file: {text}");
    assert!(text.contains("gpen-studio models import FILE"), "{text}");
}

#[test]
fn models_published_only_on_modelscope_explain_the_manual_route() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = Catalogue::builtin();
    let err = weights::download(catalogue.find("bfr-2048").unwrap(), &ModelStore::new(dir.path()), &quiet()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ModelScope") && text.contains("pytorch_model-2048.pt"), "{text}");
    assert!(text.contains("models import --as GPEN-BFR-2048"), "{text}");
}

#[test]
fn a_download_can_be_cancelled_and_resumed() {
    let body = golden_bytes();
    let server = serve(body.clone(), vec![Behaviour::Serve]);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path());
    let e = entry(&server.url, GOLDEN);
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let options = DownloadOptions {
        progress: Progress::Callback(Box::new(move |got, total| {
            assert_eq!(total, Some(16_496_299));
            if got > 0 {
                flag.store(true, Ordering::Relaxed);
            }
        })),
        cancel: Some(cancel),
        timeout: Duration::from_secs(10),
    };
    let err = weights::download(&e, &store, &options).unwrap_err();
    assert!(matches!(err, ModelError::Cancelled { .. }), "{err}");
    let kept = std::fs::metadata(store.part_of(&e)).unwrap().len();
    assert!(kept > 0 && kept < body.len() as u64);
    weights::download(&e, &store, &quiet()).unwrap();
    assert_eq!(std::fs::read(store.path_of(&e)).unwrap(), body);
}

#[test]
fn verify_detects_a_file_changed_after_download() {
    let server = serve(golden_bytes(), vec![Behaviour::Serve]);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path());
    let e = entry(&server.url, GOLDEN);
    let catalogue = Catalogue::new(vec![e.clone()]);
    let path = weights::download(&e, &store, &quiet()).unwrap();
    assert_eq!(store.installed_files(&catalogue).unwrap(), std::slice::from_ref(&path));
    let ok = store.verify(&catalogue, &path).unwrap();
    assert!(ok.had_record);
    assert_eq!(ok.validated.kind, gpen_studio::weights::ModelKind::Generator(GOLDEN));

    // One byte flipped in the middle (tensor data: the file still parses, only the hash tells).
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = store.verify(&catalogue, &path).unwrap_err();
    assert!(matches!(err, ModelError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("changed since it was installed"), "{err}");
}

#[test]
fn import_accepts_a_good_file_and_rejects_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"));
    let catalogue = Catalogue::new(vec![entry("http://127.0.0.1:9/unused", GOLDEN)]);

    // The file name says nothing; its configuration identifies the one matching entry.
    let (e, dest) = store.import(&catalogue, &common::golden_weights(), None).unwrap();
    assert_eq!(e.name, "GPEN-Test-64");
    assert_eq!(std::fs::read(&dest).unwrap(), golden_bytes());
    let (sha, _) = weights::sha256_file(&dest).unwrap();
    assert_eq!(store.checksums().unwrap()["GPEN-Test-64.pth"].sha256, sha);
    assert!(store.verify(&catalogue, &dest).unwrap().had_record);

    // Bad files: nothing is copied and no hash is recorded for them.
    let fresh = ModelStore::new(dir.path().join("other"));
    let onet = common::repo_root().join("models/mtcnn/onet.pt");
    let err = fresh.import(&catalogue, &onet, Some("GPEN-Test-64")).unwrap_err();
    assert!(matches!(err, ModelError::Invalid { .. }), "{err}");
    let page = dir.path().join("GPEN-Test-64.pth");
    std::fs::write(&page, PAGE).unwrap();
    let err = fresh.import(&catalogue, &page, None).unwrap_err();
    assert!(err.to_string().contains("got a web page, not a model"), "{err}");
    assert!(files_in(&fresh.dir).is_empty(), "{:?}", files_in(&fresh.dir));
}
