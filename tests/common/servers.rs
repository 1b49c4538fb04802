//! Servers shared by all tests of one test binary (started once, on first use, and
//! killed with the test process): Azurite for Azure Blob. Each test works in a container
//! of its own, so tests never see each other's data.

use cloudsync::remote::azureblob::{AzureOptions, AzureRemote};
use cloudsync::remote::kit::http::HttpConfig;
use cloudsync::remote::{Remote, RemoteRef};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Azurite's well-known development account and key.
pub const AZURE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub fn tools_dir() -> PathBuf {
    std::env::var_os("CLOUDSYNC_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/cloudsync/tools"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Start `cmd` from a thread that lives as long as the process, so that the child's
/// parent-death signal (SIGKILL) fires when the test process ends, not when the test
/// thread that happened to start it does.
fn spawn_for_process(mut cmd: Command, port: u16, what: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let _ = tx.send(child.map(|c| c.id()));
        loop {
            std::thread::park();
        }
    });
    rx.recv().expect("spawner thread").unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start listening on port {port}");
}

pub struct Azurite {
    pub endpoint: String,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A name no other test of this process uses (lower case, for container rules).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The process's Azurite (an external one when `CLOUDSYNC_AZURITE` names its endpoint).
pub fn azurite() -> &'static Azurite {
    static A: OnceLock<Azurite> = OnceLock::new();
    A.get_or_init(|| {
        if let Ok(e) = std::env::var("CLOUDSYNC_AZURITE") {
            return Azurite { endpoint: e };
        }
        let bin = tools_dir().join("azurite-3.37.0/node_modules/.bin/azurite-blob");
        assert!(bin.is_file(), "Azurite not found at {}: run scripts/setup-deps", bin.display());
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]).args([
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]);
        spawn_for_process(cmd, port, "Azurite");
        Azurite { endpoint: format!("http://127.0.0.1:{port}/{AZURE_ACCOUNT}") }
    })
}

impl Azurite {
    pub fn options(&self, container: &str, prefix: &str) -> AzureOptions {
        let mut o = AzureOptions::new(AZURE_ACCOUNT, AZURE_KEY, &self.endpoint, container, prefix);
        o.http = HttpConfig { retries: 3, ..HttpConfig::JOB };
        o
    }

    /// A remote on `container/prefix`, creating the container.
    pub fn remote(&self, container: &str, prefix: &str) -> Arc<AzureRemote> {
        self.remote_with(container, prefix, |_| {})
    }

    pub fn remote_with(&self, container: &str, prefix: &str, tune: impl FnOnce(&mut AzureOptions)) -> Arc<AzureRemote> {
        let root = AzureRemote::new(self.options(container, "")).expect("azure remote");
        root.mkdir(&cloudsync::path::RelPath::root()).expect("create container");
        let mut o = self.options(container, prefix);
        tune(&mut o);
        Arc::new(AzureRemote::new(o).expect("azure remote"))
    }

    /// A fresh container's remote.
    pub fn fresh(&self, prefix: &str) -> RemoteRef {
        self.remote(&unique("c"), prefix)
    }

    /// The provider fields of an AZUREBLOB credential for this server.
    pub fn credential_provider(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({"type": "AZUREBLOB", "account": AZURE_ACCOUNT, "key": AZURE_KEY,
                                   "endpoint": self.endpoint});
        v.as_object().expect("an object").clone()
    }

    /// Environment variables for an rclone remote named `name` on this server.
    pub fn rclone_env(&self, name: &str) -> Vec<(String, String)> {
        let p = format!("RCLONE_CONFIG_{}_", name.to_uppercase());
        vec![
            (format!("{p}TYPE"), "azureblob".into()),
            (format!("{p}ACCOUNT"), AZURE_ACCOUNT.into()),
            (format!("{p}KEY"), AZURE_KEY.into()),
            (format!("{p}ENDPOINT"), self.endpoint.clone()),
        ]
    }
}

pub const B2_KEY_ID: &str = "test-key-id";
pub const B2_KEY: &str = "test-application-key";

/// The B2 fake (tests/fakes/b2.py): a process of its own per test that injects faults
/// ([`B2Fake::start`]), or one shared by the process ([`b2`]).
pub struct B2Fake {
    pub endpoint: String,
    child: Option<std::process::Child>,
}

fn b2_command(port: u16) -> Command {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/b2.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(port.to_string()).args(["--key-id", B2_KEY_ID, "--key", B2_KEY, "--min-part", "1"]);
    cmd
}

impl B2Fake {
    pub fn start() -> B2Fake {
        let port = free_port();
        let mut cmd = b2_command(port);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start the B2 fake");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the B2 fake did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        B2Fake { endpoint: format!("http://127.0.0.1:{port}"), child: Some(child) }
    }

    pub fn options(&self, bucket: &str, prefix: &str) -> cloudsync::remote::b2::B2Options {
        let mut o = cloudsync::remote::b2::B2Options::new(B2_KEY_ID, B2_KEY, bucket, prefix);
        o.endpoint = self.endpoint.clone();
        o.http = HttpConfig { retries: 4, ..HttpConfig::JOB };
        o
    }

    /// A remote on `bucket/prefix`, creating the bucket.
    pub fn remote(&self, bucket: &str, prefix: &str) -> Arc<cloudsync::remote::b2::B2Remote> {
        self.remote_with(bucket, prefix, |_| {})
    }

    pub fn remote_with(
        &self,
        bucket: &str,
        prefix: &str,
        tune: impl FnOnce(&mut cloudsync::remote::b2::B2Options),
    ) -> Arc<cloudsync::remote::b2::B2Remote> {
        let root = cloudsync::remote::b2::B2Remote::new(self.options(bucket, "")).expect("b2 remote");
        root.mkdir(&cloudsync::path::RelPath::root()).expect("create bucket");
        let mut o = self.options(bucket, prefix);
        tune(&mut o);
        Arc::new(cloudsync::remote::b2::B2Remote::new(o).expect("b2 remote"))
    }

    /// Script a fault (see tests/fakes/b2.py).
    pub fn fault(&self, what: &str, body: serde_json::Value) {
        let agent = ureq::Agent::new_with_defaults();
        let body = serde_json::to_vec(&body).unwrap();
        agent
            .post(format!("{}/_fake/{what}", self.endpoint))
            .header("content-type", "application/json")
            .send(&body[..])
            .expect("fault control");
    }

    /// Calls made so far, by name.
    pub fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        let agent = ureq::Agent::new_with_defaults();
        let mut r = agent.get(format!("{}/_fake/stats", self.endpoint)).call().expect("stats");
        serde_json::from_str(&r.body_mut().read_to_string().expect("stats")).expect("stats JSON")
    }

    pub fn calls(&self, name: &str) -> u64 {
        self.stats().get(name).and_then(serde_json::Value::as_u64).unwrap_or(0)
    }

    pub fn credential_provider(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({"type": "B2", "account": B2_KEY_ID, "key": B2_KEY});
        v.as_object().expect("an object").clone()
    }

    pub fn rclone_env(&self, name: &str) -> Vec<(String, String)> {
        let p = format!("RCLONE_CONFIG_{}_", name.to_uppercase());
        vec![
            (format!("{p}TYPE"), "b2".into()),
            (format!("{p}ACCOUNT"), B2_KEY_ID.into()),
            (format!("{p}KEY"), B2_KEY.into()),
            (format!("{p}ENDPOINT"), self.endpoint.clone()),
        ]
    }
}

impl Drop for B2Fake {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The process's shared B2 fake (no faults are scripted on it).
pub fn b2() -> &'static B2Fake {
    static F: OnceLock<B2Fake> = OnceLock::new();
    F.get_or_init(|| {
        let port = free_port();
        spawn_for_process(b2_command(port), port, "the B2 fake");
        B2Fake { endpoint: format!("http://127.0.0.1:{port}"), child: None }
    })
}

/// fake-gcs-server (the storage API, which accepts any token) and the fake token endpoint
/// (tests/fakes/gcs_token.py, which checks the service account's RS256 assertions).
pub struct Gcs {
    pub endpoint: String,
    pub token_uri: String,
}

/// The process's GCS emulator and token endpoint.
pub fn gcs() -> &'static Gcs {
    static G: OnceLock<Gcs> = OnceLock::new();
    G.get_or_init(|| {
        let bin = tools_dir().join("fake-gcs-server-1.52/fake-gcs-server");
        assert!(bin.is_file(), "fake-gcs-server not found at {}: run scripts/setup-deps", bin.display());
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port.to_string(), "-backend", "memory"]).args([
            "-external-url",
            &format!("http://127.0.0.1:{port}"),
            "-log-level",
            "error",
        ]);
        spawn_for_process(cmd, port, "fake-gcs-server");
        let tport = free_port();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut tcmd = Command::new("python3");
        tcmd.arg(root.join("tests/fakes/gcs_token.py"))
            .arg(tport.to_string())
            .arg(root.join("tests/fixtures/gcs-service-account.pub.json"));
        spawn_for_process(tcmd, tport, "the GCS token endpoint");
        Gcs { endpoint: format!("http://127.0.0.1:{port}"), token_uri: format!("http://127.0.0.1:{tport}/token") }
    })
}

impl Gcs {
    /// The test service account's key file, its `token_uri` pointed at the fake.
    pub fn key_file(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gcs-service-account.json"),
        )
        .expect("service account fixture");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("service account JSON");
        v["token_uri"] = serde_json::Value::String(self.token_uri.clone());
        v
    }

    pub fn options(&self, bucket: &str, prefix: &str) -> cloudsync::remote::gcs::GcsOptions {
        let sa = cloudsync::remote::gcs::auth::ServiceAccount::parse(&self.key_file()).expect("key file");
        let mut o = cloudsync::remote::gcs::GcsOptions::new(sa, bucket, prefix);
        o.endpoint = self.endpoint.clone();
        o.http = HttpConfig { retries: 4, ..HttpConfig::JOB };
        o
    }

    pub fn remote(&self, bucket: &str, prefix: &str) -> Arc<cloudsync::remote::gcs::GcsRemote> {
        self.remote_with(bucket, prefix, |_| {})
    }

    pub fn remote_with(
        &self,
        bucket: &str,
        prefix: &str,
        tune: impl FnOnce(&mut cloudsync::remote::gcs::GcsOptions),
    ) -> Arc<cloudsync::remote::gcs::GcsRemote> {
        let root = cloudsync::remote::gcs::GcsRemote::new(self.options(bucket, "")).expect("gcs remote");
        root.mkdir(&cloudsync::path::RelPath::root()).expect("create bucket");
        let mut o = self.options(bucket, prefix);
        tune(&mut o);
        Arc::new(cloudsync::remote::gcs::GcsRemote::new(o).expect("gcs remote"))
    }

    /// Access tokens the token endpoint has issued so far.
    pub fn tokens_issued(&self) -> u64 {
        let agent = ureq::Agent::new_with_defaults();
        let mut r = agent.get(&self.token_uri).call().expect("token stats");
        let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        v["tokens"].as_u64().unwrap_or(0)
    }

    pub fn credential_provider(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({"type": "GOOGLE_CLOUD_STORAGE",
                                   "service_account_credentials": self.key_file().to_string()});
        v.as_object().expect("an object").clone()
    }

    /// rclone against the emulator: anonymous (the emulator checks no token), its
    /// endpoint.
    pub fn rclone_env(&self, name: &str) -> Vec<(String, String)> {
        let p = format!("RCLONE_CONFIG_{}_", name.to_uppercase());
        vec![
            (format!("{p}TYPE"), "google cloud storage".into()),
            (format!("{p}ANONYMOUS"), "true".into()),
            (format!("{p}ENDPOINT"), format!("{}/storage/v1/", self.endpoint)),
        ]
    }
}

/// OpenStack Swift (tests/fakes/swift_saio.py: the real servers from PyPI's `swift`,
/// tempauth, memcached) and a Keystone v2/v3 front (tests/fakes/keystone.py).
pub struct Swift {
    /// The proxy, `http://127.0.0.1:PORT`.
    pub proxy: String,
    /// The Keystone front, `http://127.0.0.1:PORT`.
    pub keystone: String,
}

/// The process's Swift.
pub fn swift() -> &'static Swift {
    static S: OnceLock<Swift> = OnceLock::new();
    S.get_or_init(|| {
        let python = tools_dir().join("swift-2.38.3/bin/python");
        assert!(python.is_file(), "Swift not found at {}: run scripts/setup-deps", python.display());
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::Builder::new().prefix("cloudsync-swift").tempdir().expect("tempdir").keep();
        let port = free_port();
        let mut cmd = Command::new(&python);
        cmd.arg(root.join("tests/fakes/swift_saio.py")).arg(&dir).arg(port.to_string());
        spawn_for_process(cmd, port, "Swift");
        let proxy = format!("http://127.0.0.1:{port}");
        // Listening is not serving: wait until tempauth hands out tokens.
        let agent = ureq::Agent::new_with_defaults();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ok = agent
                .get(format!("{proxy}/auth/v1.0"))
                .header("x-auth-user", "test:tester")
                .header("x-auth-key", "testing")
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "Swift did not start serving");
            std::thread::sleep(Duration::from_millis(200));
        }
        let kport = free_port();
        let mut kcmd = Command::new("python3");
        kcmd.arg(root.join("tests/fakes/keystone.py")).arg(kport.to_string()).arg(&proxy);
        spawn_for_process(kcmd, kport, "the Keystone front");
        Swift { proxy, keystone: format!("http://127.0.0.1:{kport}") }
    })
}

impl Swift {
    pub fn auth_v1(&self) -> cloudsync::remote::swift::auth::SwiftAuth {
        cloudsync::remote::swift::auth::SwiftAuth {
            user: "test:tester".into(),
            key: "testing".into(),
            auth: format!("{}/auth/v1.0", self.proxy),
            ..Default::default()
        }
    }

    pub fn options(&self, container: &str, prefix: &str) -> cloudsync::remote::swift::SwiftOptions {
        let mut o = cloudsync::remote::swift::SwiftOptions::new(self.auth_v1(), container, prefix);
        o.http = HttpConfig { retries: 4, ..HttpConfig::JOB };
        o
    }

    pub fn remote(&self, container: &str, prefix: &str) -> Arc<cloudsync::remote::swift::SwiftRemote> {
        self.remote_with(container, prefix, None, |_| {})
    }

    pub fn remote_with(
        &self,
        container: &str,
        prefix: &str,
        index: Option<Arc<cloudsync::index::Index>>,
        tune: impl FnOnce(&mut cloudsync::remote::swift::SwiftOptions),
    ) -> Arc<cloudsync::remote::swift::SwiftRemote> {
        let root = cloudsync::remote::swift::SwiftRemote::new(self.options(container, ""), None).expect("swift remote");
        root.mkdir(&cloudsync::path::RelPath::root()).expect("create container");
        let mut o = self.options(container, prefix);
        tune(&mut o);
        Arc::new(cloudsync::remote::swift::SwiftRemote::new(o, index).expect("swift remote"))
    }

    pub fn credential_provider(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({"type": "OPENSTACK_SWIFT", "user": "test:tester", "key": "testing",
            "auth": format!("{}/auth/v1.0", self.proxy), "auth_version": null, "endpoint_type": null});
        v.as_object().expect("an object").clone()
    }

    pub fn rclone_env(&self, name: &str) -> Vec<(String, String)> {
        let p = format!("RCLONE_CONFIG_{}_", name.to_uppercase());
        vec![
            (format!("{p}TYPE"), "swift".into()),
            (format!("{p}USER"), "test:tester".into()),
            (format!("{p}KEY"), "testing".into()),
            (format!("{p}AUTH"), format!("{}/auth/v1.0", self.proxy)),
        ]
    }
}

/// A WebDAV server on loopback and how cloudsync and rclone reach it.
pub struct Dav {
    /// The WebDAV root URL, ending in `/`.
    pub url: String,
    /// `http://127.0.0.1:PORT` (the fault proxy's upstream).
    pub origin: String,
    pub user: &'static str,
    pub pass: &'static str,
    pub vendor: cloudsync::remote::webdav::Vendor,
}

const DAV_USER: &str = "tester";
const DAV_PASS: &str = "testpass";

/// The process's Nextcloud (the fake of tests/fakes/nextcloud.py: chunked uploads,
/// checksums on request, PROPPATCH).
pub fn nextcloud() -> &'static Dav {
    static S: OnceLock<Dav> = OnceLock::new();
    S.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::Builder::new().prefix("cloudsync-nextcloud").tempdir().expect("tempdir").keep();
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(root.join("tests/fakes/nextcloud.py")).arg(&dir).arg(port.to_string()).arg(DAV_USER).arg(DAV_PASS);
        spawn_for_process(cmd, port, "the Nextcloud fake");
        let origin = format!("http://127.0.0.1:{port}");
        Dav {
            url: format!("{origin}/remote.php/dav/files/{DAV_USER}/"),
            origin,
            user: DAV_USER,
            pass: DAV_PASS,
            vendor: cloudsync::remote::webdav::Vendor::Nextcloud,
        }
    })
}

/// The process's `rclone serve webdav` (rclone 1.75, `--etag-hash SHA1`: Nextcloud's
/// checksums and X-OC-Mtime, no chunked uploads), reached as vendor NEXTCLOUD at a URL
/// that is not Nextcloud's `dav/files/USER` form, so uploads are never chunked.
pub fn rclone_webdav() -> &'static Dav {
    static S: OnceLock<Dav> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("cloudsync-rclone-dav").tempdir().expect("tempdir").keep();
        let port = free_port();
        let mut cmd = Command::new(super::rclone_current());
        cmd.args(["serve", "webdav", "--etag-hash", "SHA1", "--user", DAV_USER, "--pass", DAV_PASS, "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(&dir)
            .env("RCLONE_CONFIG", "/dev/null");
        spawn_for_process(cmd, port, "rclone serve webdav");
        let origin = format!("http://127.0.0.1:{port}");
        Dav {
            url: format!("{origin}/"),
            origin,
            user: DAV_USER,
            pass: DAV_PASS,
            vendor: cloudsync::remote::webdav::Vendor::Nextcloud,
        }
    })
}

/// The process's WsgiDAV: a plain WebDAV server (vendor OTHER: no modification times,
/// no checksums).
pub fn wsgidav() -> &'static Dav {
    static S: OnceLock<Dav> = OnceLock::new();
    S.get_or_init(|| {
        let bin = tools_dir().join("wsgidav-4.4.0/bin/wsgidav");
        assert!(bin.is_file(), "WsgiDAV not found at {}: run scripts/setup-deps", bin.display());
        let dir = tempfile::Builder::new().prefix("cloudsync-wsgidav").tempdir().expect("tempdir").keep();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let port = free_port();
        let config = serde_json::json!({
            "host": "127.0.0.1", "port": port, "provider_mapping": {"/dav": data},
            "http_authenticator": {"domain_controller": null, "accept_basic": true, "accept_digest": false,
                                   "default_to_digest": false},
            "simple_dc": {"user_mapping": {"*": {DAV_USER: {"password": DAV_PASS}}}},
            "verbose": 0, "logging": {"enable_loggers": []},
        });
        let cfg = dir.join("wsgidav.json");
        std::fs::write(&cfg, config.to_string()).expect("config");
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&cfg);
        spawn_for_process(cmd, port, "WsgiDAV");
        let origin = format!("http://127.0.0.1:{port}");
        Dav {
            url: format!("{origin}/dav/"),
            origin,
            user: DAV_USER,
            pass: DAV_PASS,
            vendor: cloudsync::remote::webdav::Vendor::Other,
        }
    })
}

impl Dav {
    pub fn options(&self, folder: &str) -> cloudsync::remote::webdav::WebdavOptions {
        let mut o = cloudsync::remote::webdav::WebdavOptions::new(&self.url, self.vendor, self.user, self.pass, folder);
        o.http = HttpConfig { retries: 4, ..HttpConfig::JOB };
        o
    }

    pub fn remote(&self, folder: &str) -> Arc<cloudsync::remote::webdav::WebdavRemote> {
        self.remote_with(folder, |_| {})
    }

    pub fn remote_with(
        &self,
        folder: &str,
        tune: impl FnOnce(&mut cloudsync::remote::webdav::WebdavOptions),
    ) -> Arc<cloudsync::remote::webdav::WebdavRemote> {
        let mut o = self.options(folder);
        tune(&mut o);
        Arc::new(cloudsync::remote::webdav::WebdavRemote::new(o).expect("webdav remote"))
    }

    pub fn vendor_name(&self) -> &'static str {
        match self.vendor {
            cloudsync::remote::webdav::Vendor::Nextcloud => "NEXTCLOUD",
            cloudsync::remote::webdav::Vendor::Owncloud => "OWNCLOUD",
            cloudsync::remote::webdav::Vendor::Sharepoint => "SHAREPOINT",
            cloudsync::remote::webdav::Vendor::Other => "OTHER",
        }
    }

    pub fn credential_provider(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({"type": "WEBDAV", "url": self.url, "vendor": self.vendor_name(),
            "user": self.user, "pass": self.pass});
        v.as_object().expect("an object").clone()
    }

    /// rclone's environment for a remote `name` on this server (its password obscured
    /// by rclone itself).
    pub fn rclone_env(&self, name: &str) -> Vec<(String, String)> {
        let p = format!("RCLONE_CONFIG_{}_", name.to_uppercase());
        let mut env = vec![
            (format!("{p}TYPE"), "webdav".into()),
            (format!("{p}URL"), self.url.clone()),
            (format!("{p}VENDOR"), self.vendor_name().to_lowercase()),
            (format!("{p}USER"), self.user.into()),
            (format!("{p}PASS"), rclone_obscure(self.pass)),
        ];
        if !self.url.contains("/dav/files/") {
            // rclone refuses vendor nextcloud at any other URL unless chunking is off.
            env.push((format!("{p}NEXTCLOUD_CHUNK_SIZE"), "0".into()));
        }
        env
    }
}

/// A password as rclone's configuration holds it (`rclone obscure`).
pub fn rclone_obscure(pass: &str) -> String {
    let out = Command::new(super::rclone_current())
        .args(["obscure", pass])
        .env("RCLONE_CONFIG", "/dev/null")
        .output()
        .expect("rclone obscure");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Start a server for the rest of the test process and wait until `port` listens.
pub fn serve(cmd: Command, port: u16, what: &str) {
    spawn_for_process(cmd, port, what)
}

/// A free loopback port.
pub fn port() -> u16 {
    free_port()
}

// ---- FTP ---------------------------------------------------------------------------------

/// The local account the FTP servers log in (scripts/setup-deps creates it, as root).
pub const FTP_USER: &str = "csync-ftp";
pub const FTP_PASS: &str = "Ftp-test-1";

/// A CA and a server certificate for `localhost`/127.0.0.1 in `dir` (`server.pem`,
/// `server.key`), signed by `ca.pem` (webpki refuses a self-signed CA certificate as a
/// server's). Returns the server certificate's SHA-256 fingerprint as openssl prints it.
pub fn test_certificate(dir: &std::path::Path) -> String {
    let sh = |script: &str| {
        let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 \
        -subj /CN=cloudsync-test-ca 2>/dev/null && \
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
        -subj /CN=localhost 2>/dev/null && \
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\nextendedKeyUsage=serverAuth\\n' >server.ext && \
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile server.ext \
        -out server.pem 2>/dev/null");
    sh("openssl x509 -in server.pem -noout -fingerprint -sha256")
        .trim()
        .split_once('=')
        .expect("fingerprint")
        .1
        .to_string()
}

/// One FTP server of the test process.
pub struct Ftp {
    pub name: &'static str,
    pub port: u16,
    pub user: &'static str,
    pub pass: &'static str,
    /// Where the files are on this machine, and the absolute folder that names it on
    /// the server (`/` for rclone, which serves a directory as its root).
    pub dir: PathBuf,
    pub folder: String,
    /// The server offers TLS with this certificate (fingerprint), or not at all.
    pub fingerprint: Option<String>,
    /// The server sets modification times (MFMT or vsftpd's MDTM form).
    pub set_times: bool,
}

fn ftp_account() {
    let ok = Command::new("id").arg(FTP_USER).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "the FTP test account {FTP_USER} does not exist: run scripts/setup-deps as root"
    );
}

/// A directory the FTP account can write, under a root-owned temporary one.
fn ftp_data_dir(prefix: &str) -> (PathBuf, PathBuf) {
    ftp_account();
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("tempdir").keep();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let st = Command::new("chown").arg(format!("{FTP_USER}:")).arg(&data).status().expect("chown");
    assert!(st.success(), "chown {} to {FTP_USER}", data.display());
    // The servers' users walk to it: let them through the temporary directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, data)
}

/// vsftpd 3.0.3: no MLSD, no MFMT (times set with `MDTM <time> <path>`), hides dotfiles
/// unless `LIST -a`, TLS offered (`AUTH TLS`, required session reuse on data
/// connections), `max_per_ip=12`.
pub fn vsftpd() -> &'static Ftp {
    static S: OnceLock<Ftp> = OnceLock::new();
    S.get_or_init(|| vsftpd_with("cloudsync-vsftpd", &[]))
}

/// Start a vsftpd of its own with `extra` configuration lines (`max_per_ip=2`,
/// `implicit_ssl=YES`, ...), for tests that need a server nobody else uses.
pub fn vsftpd_with(prefix: &str, extra: &[&str]) -> Ftp {
    let bin = tools_dir().join("vsftpd-3.0.3/usr/sbin/vsftpd");
    assert!(bin.is_file(), "vsftpd not found at {}: run scripts/setup-deps", bin.display());
    let (dir, data) = ftp_data_dir(prefix);
    let fingerprint = test_certificate(&dir);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("empty dir");
    let port = free_port();
    let pasv = free_port_range();
    let d = dir.display();
    let mut conf = format!(
        "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
         anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=022\nuse_localtime=NO\n\
         mdtm_write=YES\nforce_dot_files=NO\npasv_enable=YES\npasv_min_port={}\npasv_max_port={}\n\
         pasv_address=127.0.0.1\nconnect_from_port_20=NO\nseccomp_sandbox=NO\nsecure_chroot_dir={}\n\
         pam_service_name=vsftpd\nmax_per_ip=12\nxferlog_enable=YES\nvsftpd_log_file={d}/vsftpd.log\n\
         log_ftp_protocol=YES\nssl_enable=YES\nforce_local_logins_ssl=NO\nforce_local_data_ssl=NO\n\
         require_ssl_reuse=YES\nrsa_cert_file={d}/server.pem\nrsa_private_key_file={d}/server.key\n",
        pasv.0,
        pasv.1,
        empty.display()
    );
    for l in extra {
        let key = l.split('=').next().unwrap_or("");
        conf = conf.lines().filter(|c| !c.starts_with(&format!("{key}="))).collect::<Vec<_>>().join("\n") + "\n";
        conf.push_str(l);
        conf.push('\n');
    }
    let cfg = dir.join("vsftpd.conf");
    std::fs::write(&cfg, conf).expect("vsftpd.conf");
    let mut cmd = Command::new(bin);
    cmd.arg(&cfg).env("TZ", "UTC");
    spawn_for_process(cmd, port, "vsftpd");
    Ftp::local_account("vsftpd", port, data, fingerprint)
}

/// pure-ftpd 1.0.50: MLSD, MFMT, UTF8, TLS optional (`-Y 1`).
pub fn pureftpd() -> &'static Ftp {
    static S: OnceLock<Ftp> = OnceLock::new();
    S.get_or_init(|| {
        assert!(std::path::Path::new("/usr/sbin/pure-ftpd").is_file(), "pure-ftpd not found: run scripts/setup-deps");
        let (dir, data) = ftp_data_dir("cloudsync-pureftpd");
        let fingerprint = test_certificate(&dir);
        let pem =
            [std::fs::read(dir.join("server.key")).unwrap(), std::fs::read(dir.join("server.pem")).unwrap()].concat();
        std::fs::write(dir.join("pure-ftpd.pem"), pem).expect("pure-ftpd.pem");
        let port = free_port();
        let pasv = free_port_range();
        let mut cmd = Command::new("/usr/sbin/pure-ftpd");
        cmd.arg("-S")
            .arg(format!("127.0.0.1,{port}"))
            .arg("-p")
            .arg(format!("{}:{}", pasv.0, pasv.1))
            .args([
                "-P",
                "127.0.0.1",
                "-l",
                "unix",
                "-E",
                "-H",
                "-D",
                "-u",
                "1000",
                "-Y",
                "1",
                "-c",
                "50",
                "-C",
                "50",
                "-2",
            ])
            .arg(dir.join("pure-ftpd.pem"))
            .arg("-g")
            .arg(dir.join("pure-ftpd.pid"))
            .env("TZ", "UTC");
        spawn_for_process(cmd, port, "pure-ftpd");
        Ftp::local_account("pure-ftpd", port, data, fingerprint)
    })
}

/// `rclone serve ftp` (rclone 1.75): MLSD, no MFMT (times cannot be set), no TLS.
pub fn rclone_ftp() -> &'static Ftp {
    static S: OnceLock<Ftp> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("cloudsync-rclone-ftp").tempdir().expect("tempdir").keep();
        let port = free_port();
        let pasv = free_port_range();
        let mut cmd = Command::new(super::rclone_current());
        cmd.args(["serve", "ftp", "--user", "u", "--pass", "p", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--passive-port")
            .arg(format!("{}-{}", pasv.0, pasv.1))
            .arg(&dir)
            .env("RCLONE_CONFIG", "/dev/null");
        spawn_for_process(cmd, port, "rclone serve ftp");
        Ftp {
            name: "rclone",
            port,
            user: "u",
            pass: "p",
            folder: String::new(),
            dir,
            fingerprint: None,
            set_times: false,
        }
    })
}

/// 100 ports for passive data connections, below the kernel's ephemeral range (so no
/// client socket takes them), distinct per server of this process and shifted by the pid
/// between test binaries.
fn free_port_range() -> (u16, u16) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let slot = (u64::from(std::process::id()) * 7 + n * 13) % 120;
    let lo = 20_000 + slot as u16 * 100;
    (lo, lo + 99)
}

impl Ftp {
    /// A server logging in the local test account, with TLS and settable times.
    fn local_account(name: &'static str, port: u16, data: PathBuf, fingerprint: String) -> Ftp {
        Ftp {
            name,
            port,
            user: FTP_USER,
            pass: FTP_PASS,
            folder: data.display().to_string(),
            dir: data,
            fingerprint: Some(fingerprint),
            set_times: true,
        }
    }

    /// The folder on the server for `sub` (a path below this server's data directory).
    pub fn folder_of(&self, sub: &str) -> String {
        let base = self.folder.trim_end_matches('/');
        if sub.is_empty() { if base.is_empty() { "/".into() } else { base.into() } } else { format!("{base}/{sub}") }
    }

    /// The local path of `sub`.
    pub fn path_of(&self, sub: &str) -> PathBuf {
        self.dir.join(sub)
    }

    pub fn options(&self, sub: &str) -> cloudsync::remote::ftp::FtpOptions {
        let mut o =
            cloudsync::remote::ftp::FtpOptions::new("127.0.0.1", self.port, self.user, self.pass, &self.folder_of(sub));
        o.http = HttpConfig { retries: 4, ..HttpConfig::JOB };
        o
    }

    /// The same, over explicit TLS with the server's certificate pinned.
    pub fn tls_options(&self, sub: &str) -> cloudsync::remote::ftp::FtpOptions {
        let mut o = self.options(sub);
        o.tls = cloudsync::remote::ftp::tls::TlsMode::Explicit;
        let fp = self.fingerprint.as_deref().expect("a TLS server");
        o.tls_fingerprint = cloudsync::remote::ftp::tls::parse_fingerprint(fp).unwrap();
        o
    }

    pub fn remote(&self, sub: &str) -> Arc<cloudsync::remote::ftp::FtpRemote> {
        Arc::new(cloudsync::remote::ftp::FtpRemote::new(self.options(sub)).expect("ftp remote"))
    }

    pub fn credential_provider(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({"type": "FTP", "host": "127.0.0.1", "port": self.port, "user": self.user,
            "pass": self.pass});
        v.as_object().expect("an object").clone()
    }

    /// rclone's environment for a remote `name` on this server (its password obscured
    /// by rclone itself); `writing_mdtm` for vsftpd, as its admin would set it.
    pub fn rclone_env(&self, name: &str) -> Vec<(String, String)> {
        let p = format!("RCLONE_CONFIG_{}_", name.to_uppercase());
        let mut env = vec![
            (format!("{p}TYPE"), "ftp".into()),
            (format!("{p}HOST"), "127.0.0.1".into()),
            (format!("{p}PORT"), self.port.to_string()),
            (format!("{p}USER"), self.user.into()),
            (format!("{p}PASS"), rclone_obscure(self.pass)),
        ];
        if self.name == "vsftpd" {
            env.push((format!("{p}WRITING_MDTM"), "true".into()));
            env.push((format!("{p}FORCE_LIST_HIDDEN"), "true".into()));
        }
        env
    }
}

// ---- SSH ---------------------------------------------------------------------------------

/// An OpenSSH sshd of the test process: host keys of its own (Ed25519 and RSA), password
/// and public-key logins of the local test account (`FTP_USER`), keys in
/// `authorized_keys/<user>` of its directory.
pub struct Sshd {
    pub port: u16,
    pub dir: PathBuf,
    /// A directory the test account owns (the files tests write).
    pub data: PathBuf,
    /// `ssh-keygen -l` fingerprints of its host keys (`SHA256:...`).
    pub fingerprints: Vec<String>,
}

impl Sshd {
    /// A remote on `sub` below the data directory, logging in with the password.
    pub fn options(&self, sub: &str) -> cloudsync::remote::sftp::SftpOptions {
        let folder =
            if sub.is_empty() { self.data.display().to_string() } else { format!("{}/{sub}", self.data.display()) };
        let mut o = cloudsync::remote::sftp::SftpOptions::new("127.0.0.1", self.port, FTP_USER, FTP_PASS, &folder);
        o.connect_timeout = Duration::from_secs(20);
        o.io_timeout = Duration::from_secs(60);
        o
    }

    pub fn remote(&self, sub: &str) -> Arc<cloudsync::remote::sftp::SftpRemote> {
        Arc::new(cloudsync::remote::sftp::SftpRemote::new(self.options(sub)).expect("sftp remote"))
    }

    /// rclone's environment for a remote `name` on this server (password login, no host
    /// key check: rclone's default without `known_hosts_file`).
    pub fn rclone_env(&self, name: &str) -> Vec<(String, String)> {
        let p = format!("RCLONE_CONFIG_{}_", name.to_uppercase());
        vec![
            (format!("{p}TYPE"), "sftp".into()),
            (format!("{p}HOST"), "127.0.0.1".into()),
            (format!("{p}PORT"), self.port.to_string()),
            (format!("{p}USER"), FTP_USER.into()),
            (format!("{p}PASS"), rclone_obscure(FTP_PASS)),
        ]
    }

    /// Let `public_key` (an authorized_keys line) log in as the test account.
    pub fn authorize(&self, public_key: &str) {
        use std::io::Write as _;
        let path = self.dir.join("authorized_keys").join(FTP_USER);
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("authorized_keys");
        writeln!(f, "{}", public_key.trim()).expect("write authorized_keys");
    }
}

/// Start an sshd with `extra` configuration lines.
pub fn sshd_with(extra: &[&str]) -> Sshd {
    assert!(std::path::Path::new("/usr/sbin/sshd").is_file(), "sshd not found: run scripts/setup-deps");
    let (dir, data) = ftp_data_dir("cloudsync-sshd");
    std::fs::create_dir_all(dir.join("authorized_keys")).expect("authorized_keys dir");
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    let mut fingerprints = Vec::new();
    for (kind, name) in [("ed25519", "host_ed25519"), ("rsa", "host_rsa")] {
        let path = dir.join(name);
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen");
        assert!(st.success());
        let out = Command::new("ssh-keygen").arg("-l").arg("-f").arg(path.with_extension("pub")).output().unwrap();
        fingerprints.push(String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap_or("").to_string());
    }
    let port = free_port();
    let d = dir.display();
    let mut conf = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nHostKey {d}/host_rsa\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys/%u\nStrictModes no\nUsePAM no\nPermitRootLogin no\n\
         PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowUsers {FTP_USER}\n\
         MaxStartups 64:30:128\nMaxSessions 32\nUseDNS no\nLogLevel VERBOSE\nSubsystem sftp internal-sftp\n"
    );
    for l in extra {
        conf.push_str(l);
        conf.push('\n');
    }
    std::fs::write(dir.join("sshd_config"), conf).expect("sshd_config");
    let mut cmd = Command::new("/usr/sbin/sshd");
    cmd.arg("-D").arg("-e").arg("-f").arg(dir.join("sshd_config")).env("TZ", "UTC");
    spawn_for_process(cmd, port, "sshd");
    Sshd { port, dir, data, fingerprints }
}

/// The process's sshd.
pub fn sshd() -> &'static Sshd {
    static S: OnceLock<Sshd> = OnceLock::new();
    S.get_or_init(|| sshd_with(&[]))
}

/// An sshd whose account may only use SFTP (`ForceCommand internal-sftp`): no shell, so
/// no md5sum (the "compare by size and time" path).
pub fn sshd_sftp_only() -> &'static Sshd {
    static S: OnceLock<Sshd> = OnceLock::new();
    S.get_or_init(|| sshd_with(&["ForceCommand internal-sftp"]))
}

/// An sshd whose account runs every command through `script` (ForceCommand), given as the
/// body of a `case "$SSH_ORIGINAL_COMMAND" in ... esac` that falls through to the real
/// command, and to OpenSSH's sftp-server for the SFTP subsystem.
fn sshd_forced(name: &str, cases: &str) -> Sshd {
    let dir = tempfile::Builder::new().prefix("cloudsync-forced").tempdir().expect("tempdir").keep();
    let script = dir.join(name);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in\n{cases}\n  sftp|internal-sftp) exec /usr/lib/openssh/sftp-server ;;\n  \
             *) exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\" ;;\nesac\n"
        ),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    sshd_with(&[&format!("ForceCommand {}", script.display())])
}

/// An sshd account with `sha1sum` but no `md5sum` (as on some appliances): digests and
/// upload checks by SHA-1.
pub fn sshd_sha1_only() -> &'static Sshd {
    static S: OnceLock<Sshd> = OnceLock::new();
    S.get_or_init(|| sshd_forced("sha1-only", "  md5sum*) echo 'sh: md5sum: not found' >&2; exit 127 ;;"))
}

/// An sshd whose `md5sum` answers the empty probe truly and lies about every file: each
/// upload's check must fail.
pub fn sshd_lying_md5sum() -> &'static Sshd {
    static S: OnceLock<Sshd> = OnceLock::new();
    S.get_or_init(|| sshd_forced("lying-md5sum", "  'md5sum '*) echo '0123456789abcdef0123456789abcdef  x' ;;"))
}

/// `rclone serve sftp` (rclone 1.75, Go's SSH server; it emulates md5sum), as an [`Sshd`]
/// whose files are `data`.
pub fn rclone_sftp() -> &'static Sshd {
    static S: OnceLock<Sshd> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("cloudsync-rclone-sftp").tempdir().expect("tempdir").keep();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let port = free_port();
        let mut cmd = Command::new(super::rclone_current());
        cmd.args(["serve", "sftp", "--user", FTP_USER, "--pass", FTP_PASS, "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("/")
            .env("RCLONE_CONFIG", "/dev/null")
            .env("XDG_CACHE_HOME", dir.join("cache"));
        spawn_for_process(cmd, port, "rclone serve sftp");
        Sshd { port, dir, data, fingerprints: Vec::new() }
    })
}

// ---- HTTP ---------------------------------------------------------------------------------

/// A directory on disk served read-only over HTTP by a real server.
pub struct HttpTree {
    pub name: &'static str,
    /// The tree's root URL (ending in `/`).
    pub url: String,
    /// The directory it serves.
    pub dir: PathBuf,
}

impl HttpTree {
    /// The read-only HTTP remote on `sub`, as a job sees it.
    pub fn http(&self, sub: &str) -> Arc<cloudsync::remote::http::HttpRemote> {
        let o = cloudsync::remote::http::HttpOptions::new(&self.url, sub);
        Arc::new(cloudsync::remote::http::HttpRemote::new(o).expect("http remote"))
    }

    /// A remote on `sub` that reads over HTTP and writes into the served directory (what
    /// a web server's owner does by hand): the suites' fixtures are written through it,
    /// everything is read, listed and timed by the HTTP remote.
    pub fn remote(&self, sub: &str) -> RemoteRef {
        let disk = cloudsync::remote::local::LocalRemote::new(self.dir.join(sub), Default::default(), None);
        Arc::new(Served { http: self.http(sub), disk })
    }
}

/// Reads through HTTP, writes to the disk behind it.
pub struct Served {
    http: Arc<cloudsync::remote::http::HttpRemote>,
    disk: cloudsync::remote::local::LocalRemote,
}

mod served {
    use super::Served;
    use cloudsync::error::Result;
    use cloudsync::path::RelPath;
    use cloudsync::remote::{Entry, Features, Nanos, Opened, PutInfo, Remote, RootState, Source};

    impl Remote for Served {
        fn describe(&self) -> String {
            self.http.describe()
        }
        fn features(&self) -> Features {
            Features { read_only: false, ..self.http.features() }
        }
        fn root_state(&self) -> Result<RootState> {
            self.http.root_state()
        }
        fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(cloudsync::Error)) -> Result<Vec<Entry>> {
            self.http.list_dir(dir, bad)
        }
        fn mod_time(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
            self.http.mod_time(path, entry)
        }
        fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
            self.http.open(path, entry, offset, len)
        }
        fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
            let mut e = self.disk.put(path, src, info)?;
            // As the HTTP side will list it: whole seconds, no digest.
            e.mtime = e.mtime.map(|t| t - t.rem_euclid(1_000_000_000));
            e.md5 = None;
            Ok(e)
        }
        fn delete(&self, path: &RelPath, entry: &Entry) -> Result<()> {
            self.disk.delete(path, entry)
        }
        fn mkdir(&self, dir: &RelPath) -> Result<()> {
            self.disk.mkdir(dir)
        }
        fn rmdir(&self, dir: &RelPath) -> Result<()> {
            self.disk.rmdir(dir)
        }
        fn request_counts(&self) -> Vec<(&'static str, u64)> {
            self.http.request_counts()
        }
    }
}

fn http_tree(name: &'static str, start: impl FnOnce(&std::path::Path, u16) -> Command) -> HttpTree {
    let dir = tempfile::Builder::new().prefix("cloudsync-http").tempdir().expect("tempdir").keep();
    let port = free_port();
    spawn_for_process(start(&dir, port), port, name);
    HttpTree { name, url: format!("http://127.0.0.1:{port}/"), dir }
}

/// The process's `rclone serve http` (rclone 1.75: Range, Last-Modified), listings never
/// cached.
pub fn rclone_http() -> &'static HttpTree {
    static S: OnceLock<HttpTree> = OnceLock::new();
    S.get_or_init(|| {
        http_tree("rclone serve http", |dir, port| {
            let mut cmd = Command::new(super::rclone_current());
            cmd.args(["serve", "http", "--dir-cache-time", "0s", "--addr"])
                .arg(format!("127.0.0.1:{port}"))
                .arg(dir)
                .env("RCLONE_CONFIG", "/dev/null");
            cmd
        })
    })
}

/// The process's Python `http.server` (no Range: answers every GET with the whole file).
pub fn python_http() -> &'static HttpTree {
    static S: OnceLock<HttpTree> = OnceLock::new();
    S.get_or_init(|| {
        http_tree("python3 -m http.server", |dir, port| {
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"]).arg(dir).arg(port.to_string());
            cmd
        })
    })
}

/// The served directory readable by the web servers' workers (the tempdir is 0700).
fn world_readable(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The process's nginx (Debian's nginx-light) with `autoindex on`: listings with sizes in
/// bytes and minute times, Range and Last-Modified. One process (`master_process off`),
/// so that it ends with the test process.
pub fn nginx_http() -> &'static HttpTree {
    static S: OnceLock<HttpTree> = OnceLock::new();
    S.get_or_init(|| {
        let conf_dir = tempfile::Builder::new().prefix("cloudsync-nginx").tempdir().expect("tempdir").keep();
        http_tree("nginx", |dir, port| {
            world_readable(dir);
            let c = conf_dir.display();
            let conf = format!(
                "daemon off;\nmaster_process off;\nerror_log {c}/error.log;\npid {c}/nginx.pid;\nevents {{}}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {c}/body;\n  include /etc/nginx/mime.types;\n  \
                 server {{\n    listen 127.0.0.1:{port};\n    root {};\n    autoindex on;\n  }}\n}}\n",
                dir.display()
            );
            std::fs::write(conf_dir.join("nginx.conf"), conf).expect("nginx.conf");
            let mut cmd = Command::new("/usr/sbin/nginx");
            cmd.arg("-p")
                .arg(&conf_dir)
                .arg("-e")
                .arg(conf_dir.join("error.log"))
                .arg("-c")
                .arg(conf_dir.join("nginx.conf"));
            cmd
        })
    })
}

/// The process's Apache httpd 2.4 with mod_autoindex as Debian configures it
/// (`FancyIndexing HTMLTable NameWidth=*`), the event MPM in the foreground (its
/// children leave when the parent, killed with the test process, is gone).
pub fn apache_http() -> &'static HttpTree {
    static S: OnceLock<HttpTree> = OnceLock::new();
    S.get_or_init(|| {
        let conf_dir = tempfile::Builder::new().prefix("cloudsync-apache").tempdir().expect("tempdir").keep();
        http_tree("Apache", |dir, port| {
            world_readable(dir);
            let (c, d) = (conf_dir.display(), dir.display());
            let m = "/usr/lib/apache2/modules";
            let conf = format!(
                "ServerName 127.0.0.1\nListen 127.0.0.1:{port}\nPidFile {c}/httpd.pid\nErrorLog {c}/error.log\n\
                 LoadModule mpm_event_module {m}/mod_mpm_event.so\nLoadModule authz_core_module {m}/mod_authz_core.so\n\
                 LoadModule dir_module {m}/mod_dir.so\nLoadModule autoindex_module {m}/mod_autoindex.so\n\
                 LoadModule mime_module {m}/mod_mime.so\nTypesConfig /etc/mime.types\nUser www-data\nGroup www-data\n\
                 DocumentRoot \"{d}\"\n<Directory \"{d}\">\n  Options Indexes\n  Require all granted\n</Directory>\n\
                 IndexOptions FancyIndexing HTMLTable VersionSort NameWidth=* DescriptionWidth=* Charset=UTF-8\n"
            );
            std::fs::write(conf_dir.join("httpd.conf"), conf).expect("httpd.conf");
            // Its children drop root, which clears the parent-death signal: a watchdog
            // ends them once this test process is gone.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "while kill -0 {} 2>/dev/null; do sleep 2; done; pkill -KILL -f '{c}/httpd.conf'",
                    std::process::id()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut cmd = Command::new("/usr/sbin/apache2");
            cmd.arg("-DFOREGROUND").arg("-d").arg(&conf_dir).arg("-f").arg(conf_dir.join("httpd.conf"));
            cmd
        })
    })
}
