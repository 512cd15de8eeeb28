//! `honnin serve` as a process: first start, key management, durability under
//! `kill -9`, and several processes sharing one PostgreSQL database.
//!
//! PostgreSQL tests create a fresh database on `HONNIN_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and skip with a message when it is
//! unreachable, unless `HONNIN_REQUIRE_POSTGRES` is set (CI sets it).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use honnin_storage::testing::{fresh_postgres_database, TestDatabase};
use serde_json::{json, Value};

/// The tests of this file run one at a time: they start servers that use both cores,
/// and the propagation test measures time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const MASTER: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, tests only

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> Value {
    json!({ "bytes": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

struct Proc {
    child: Child,
    base: String,
    admin: Option<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `honnin serve` on a free port and waits until it listens.
fn serve(data_dir: &Path, database: Option<&str>, master_env: bool) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_honnin"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("HONNIN_BACKGROUND__SYNC_INTERVAL_MS", "100")
        .env("HONNIN_LIMITS__RATE_LIMIT_PER_SECOND", "10000")
        .env("HONNIN_LIMITS__RATE_LIMIT_BURST", "10000")
        .env_remove("HONNIN_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(db) = database {
        cmd.args(["--database", db]);
    }
    if master_env {
        cmd.env("HONNIN_MASTER_KEY", MASTER);
    } else {
        cmd.env_remove("HONNIN_MASTER_KEY");
    }
    let child = cmd.spawn().expect("start honnin serve");
    // Owned by `Proc` from here on, so the process is killed and reaped on every path.
    let mut proc = Proc {
        child,
        base: String::new(),
        admin: None,
    };
    let stdout = proc.child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "honnin serve did not start");
        let line = lines.next().expect("server output").expect("utf-8");
        if let Some(k) = line.strip_prefix("admin API key (shown once, store it now): ") {
            proc.admin = Some(k.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("honnin listening on ") {
            proc.base = rest.split_whitespace().next().unwrap().to_string();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return proc;
        }
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn call(
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Result<(u16, Value)> {
    let c = client();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = c.request(m, format!("{base}{path}")).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send()?;
    let status = res.status().as_u16();
    let text = res.text()?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn ok(base: &str, key: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (s, v) = call(base, key, method, path, body).expect("request");
    assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
    v
}

fn honnin(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_honnin"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("HONNIN_MASTER_KEY")
        .output()
        .unwrap()
}

#[test]
fn first_start_creates_a_private_master_key_and_prints_one_admin_key() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = serve(&data, None, false);
    let admin = p.admin.clone().expect("first start prints an admin key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "master.key mode {mode:o}");
    }
    assert!(data.join("honnin.db").is_file());
    ok(&p.base, &admin, "GET", "/v1/collections", None);

    // Keys made by the CLI work against the running server; revocation stops them.
    let out = honnin(
        &["keys", "create", "--role", "recognizer", "--name", "ci"],
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    ok(&p.base, &token, "GET", "/v1/collections", None);
    let (s, _) = call(
        &p.base,
        &token,
        "POST",
        "/v1/collections",
        Some(&json!({"collectionId": "x"})),
    )
    .unwrap();
    assert_eq!(s, 403);
    let out = honnin(&["keys", "list", "--json"], &data);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci")
        .unwrap()["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(token.rsplit('_').next().unwrap()));
    let out = honnin(&["keys", "revoke", &id], &data);
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, _) = call(&p.base, &token, "GET", "/v1/collections", None).unwrap();
        if s == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a revoked key still works after 5 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = honnin(&["keys", "create", "--role", "superuser"], &data);
    assert!(!out.status.success());
    drop(p);

    // Second start: same key file, no new admin key.
    let p = serve(&data, None, false);
    assert!(
        p.admin.is_none(),
        "an admin key is printed on the first start only"
    );
    ok(&p.base, &admin, "GET", "/v1/collections", None);
}

/// Streams index requests from 2 clients, kills the server with SIGKILL mid-stream,
/// restarts it and checks that every acknowledged face is there and every face whose
/// deletion was acknowledged is not.
fn kill9_trials(data: &Path, database: Option<&str>, trials: usize) {
    let images = [
        fixture("obama.jpg"),
        fixture("obama2.jpg"),
        fixture("biden.jpg"),
    ];
    let mut admin: Option<String> = None;
    let mut acked: HashSet<String> = HashSet::new();
    let mut deleted: HashSet<String> = HashSet::new();
    for trial in 0..trials {
        let p = serve(data, database, true);
        if admin.is_none() {
            admin = p.admin.clone();
            ok(
                &p.base,
                admin.as_ref().unwrap(),
                "POST",
                "/v1/collections",
                Some(&json!({"collectionId": "durable"})),
            );
        }
        let key = admin.clone().unwrap();
        // What survived the previous crash.
        check_faces(&p.base, &key, &acked, &deleted, trial);
        let new_acks = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (base, key, acks, stop) =
                    (p.base.clone(), key.clone(), new_acks.clone(), stop.clone());
                let bodies: Vec<Value> = images
                    .iter()
                    .map(|i| json!({"image": b64(i), "maxFaces": 1}))
                    .collect();
                std::thread::spawn(move || {
                    let mut n = w;
                    while !stop.load(Ordering::SeqCst) {
                        match call(
                            &base,
                            &key,
                            "POST",
                            "/v1/collections/durable/faces",
                            Some(&bodies[n % 3]),
                        ) {
                            Ok((200, v)) => {
                                for r in v["faceRecords"].as_array().unwrap() {
                                    acks.lock()
                                        .unwrap()
                                        .push(r["face"]["faceId"].as_str().unwrap().to_string());
                                }
                            }
                            Ok((s, v)) => panic!("index answered {s}: {v}"),
                            Err(_) => break, // the server died under us: unacknowledged
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        // Let some acknowledgements accumulate, delete one acknowledged face, then kill.
        let t0 = Instant::now();
        while new_acks.lock().unwrap().len() < 6 && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let victim = new_acks.lock().unwrap()[0].clone();
        let v = ok(
            &p.base,
            &key,
            "DELETE",
            "/v1/collections/durable/faces",
            Some(&json!({"faceIds": [victim]})),
        );
        assert_eq!(v["deletedFaces"], json!([victim]));
        deleted.insert(victim);
        std::thread::sleep(Duration::from_millis(150));
        let mut p = p;
        p.child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
        let _ = p.child.wait();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().unwrap();
        }
        let n = new_acks.lock().unwrap().len();
        acked.extend(new_acks.lock().unwrap().iter().cloned());
        eprintln!(
            "trial {trial}: {n} faces acknowledged before kill -9 ({} in total)",
            acked.len()
        );
    }
    let p = serve(data, database, true);
    check_faces(&p.base, admin.as_ref().unwrap(), &acked, &deleted, trials);
}

fn check_faces(
    base: &str,
    key: &str,
    acked: &HashSet<String>,
    deleted: &HashSet<String>,
    trial: usize,
) {
    let mut present = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/v1/collections/durable/faces?maxResults=500&nextToken={t}"),
            None => "/v1/collections/durable/faces?maxResults=500".to_string(),
        };
        let v = ok(base, key, "GET", &path, None);
        for f in v["faces"].as_array().unwrap() {
            present.insert(f["faceId"].as_str().unwrap().to_string());
        }
        match v["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let lost: Vec<_> = acked
        .iter()
        .filter(|f| !deleted.contains(*f) && !present.contains(*f))
        .collect();
    assert!(
        lost.is_empty(),
        "after restart {trial}: acknowledged faces lost: {lost:?}"
    );
    let back: Vec<_> = deleted.iter().filter(|f| present.contains(*f)).collect();
    assert!(
        back.is_empty(),
        "after restart {trial}: deleted faces came back: {back:?}"
    );
    // The rebuilt index finds them too.
    if !acked.is_empty() {
        let v = ok(
            base,
            key,
            "POST",
            "/v1/collections/durable/search",
            Some(&json!({"image": b64(&fixture("obama.jpg")), "maxResults": 4096})),
        );
        assert!(
            !v["faceMatches"].as_array().unwrap().is_empty(),
            "the index was rebuilt from storage"
        );
    }
}

#[test]
fn kill_minus_9_loses_no_acknowledged_face_on_sqlite() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    kill9_trials(&dir.path().join("data"), None, 3);
}

fn pg() -> Option<(tokio::runtime::Runtime, TestDatabase)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(fresh_postgres_database("cli"))?;
    Some((rt, db))
}

#[test]
fn kill_minus_9_loses_no_acknowledged_face_on_postgres() {
    let _serial = serial();
    let Some((rt, db)) = pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    kill9_trials(&dir.path().join("data"), Some(&db.url), 3);
    rt.block_on(db.drop());
}

#[test]
fn two_servers_on_postgres_see_each_others_writes_and_deletes_within_1s() {
    let _serial = serial();
    let Some((rt, db)) = pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = serve(&dir.path().join("a"), Some(&db.url), true);
    let key = a.admin.clone().expect("admin key");
    let b = serve(&dir.path().join("b"), Some(&db.url), true);
    assert!(
        b.admin.is_none(),
        "the second server shares the first one's keys"
    );

    ok(
        &a.base,
        &key,
        "POST",
        "/v1/collections",
        Some(&json!({"collectionId": "shared"})),
    );
    let probe = json!({"image": b64(&fixture("obama2.jpg"))});
    let mut worst = Duration::ZERO;
    for round in 0..3 {
        let v = ok(
            &a.base,
            &key,
            "POST",
            "/v1/collections/shared/faces",
            Some(&json!({"image": b64(&fixture("obama.jpg"))})),
        );
        let face = v["faceRecords"][0]["face"]["faceId"]
            .as_str()
            .unwrap()
            .to_string();
        // Server B answers a search by this face id once the face is in its own
        // in-memory index (404 before): that is the propagation being measured.
        let by_id = json!({"faceId": face});
        let t0 = Instant::now();
        loop {
            let (s, v) = call(
                &b.base,
                &key,
                "POST",
                "/v1/collections/shared/search",
                Some(&by_id),
            )
            .unwrap();
            if s == 200 {
                break;
            }
            assert_eq!(s, 404, "{v}");
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "round {round}: server B did not see the new face within 1 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let seen = t0.elapsed();
        let v = ok(
            &b.base,
            &key,
            "POST",
            "/v1/collections/shared/search",
            Some(&probe),
        );
        assert!(
            v["faceMatches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["face"]["faceId"] == face.as_str()),
            "B finds it by image: {v}"
        );
        ok(
            &a.base,
            &key,
            "DELETE",
            "/v1/collections/shared/faces",
            Some(&json!({"faceIds": [face]})),
        );
        let t1 = Instant::now();
        loop {
            let (s, v) = call(
                &b.base,
                &key,
                "POST",
                "/v1/collections/shared/search",
                Some(&by_id),
            )
            .unwrap();
            if s == 404 {
                break;
            }
            assert_eq!(s, 200, "{v}");
            assert!(
                t1.elapsed() < Duration::from_secs(1),
                "round {round}: server B still has a deleted face after 1 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let gone = t1.elapsed();
        eprintln!("round {round}: write visible on B after {seen:?}, delete after {gone:?}");
        worst = worst.max(seen).max(gone);
    }
    eprintln!("worst propagation delay: {worst:?}");
    // Deleting the collection on B removes it from A.
    ok(&b.base, &key, "DELETE", "/v1/collections/shared", None);
    let t0 = Instant::now();
    loop {
        let (s, _) = call(
            &a.base,
            &key,
            "POST",
            "/v1/collections/shared/search",
            Some(&probe),
        )
        .unwrap();
        if s == 404 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "A still searches a collection deleted on B"
        );
    }
    drop(a);
    drop(b);
    rt.block_on(db.drop());
}

/// Issue 12, item 6: key names are printable text, and `honnin keys list` never prints
/// a raw control character, even for a row written before names were checked.
#[test]
fn key_names_never_put_terminal_escapes_on_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = honnin(
        &[
            "keys",
            "create",
            "--role",
            "recognizer",
            "--name",
            "\u{1b}[2J\u{1b}[31mowned",
        ],
        &data,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("printable"));
    let out = honnin(
        &["keys", "create", "--role", "recognizer", "--name", "fine"],
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A legacy row holding escapes, written straight into the database.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store =
            honnin_storage::Store::open(&format!("sqlite://{}", data.join("honnin.db").display()))
                .await
                .unwrap();
        store
            .insert_key(&honnin_storage::KeyRow {
                key_id: "0123456789abcdef".into(),
                secret_hash: vec![0; 32],
                role: "recognizer".into(),
                collection_id: None,
                name: "legacy\u{1b}]0;pwned\u{7}\u{1b}[2J".into(),
                created_ms: 1,
                revoked_ms: None,
                scope_uid: None,
            })
            .await
            .unwrap();
        store.close().await;
    });
    let out = honnin(&["keys", "list"], &data);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("legacy\\u{1b}]0;pwned"), "{text}");
}
