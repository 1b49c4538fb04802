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
