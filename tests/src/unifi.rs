//! A stand-in for the UniFi Network application's BGP upload, as strict as the part bgplb uses:
//! `POST /proxy/network/v2/api/site/{site}/bgp/config` over HTTPS with a self-signed certificate
//! (as the console has), the API key in `X-API-KEY`, and exactly the document the Network
//! application stores: `enabled` (bool), `description`, `frr_bgpd_config` and
//! `uploaded_file_name` (strings). Anything else is refused (401 without the key, 404 for
//! another site, 400 for another shape). It records what it took; [`ControllerSim::reprovision`]
//! rewrites FRR from its copy and restarts FRR, as the controller does when it provisions the
//! gateway.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

/// One upload the controller took.
#[derive(Debug, Clone)]
pub struct Upload {
    pub at: Instant,
    pub frr_bgpd_config: String,
    pub description: String,
    pub uploaded_file_name: String,
}

#[derive(Clone)]
pub struct ControllerSim {
    key: String,
    uploads: Arc<Mutex<Vec<Upload>>>,
    refused: Arc<Mutex<Vec<(u16, String)>>>,
    /// The controller's certificate (PEM): what the agent is told to trust.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl ControllerSim {
    /// A controller with a fresh self-signed certificate for 127.0.0.1 (files in `dir`) that
    /// accepts `api_key`.
    pub fn new(dir: &Path, api_key: &str) -> ControllerSim {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("self-signed certificate");
        let cert_file = dir.join("unifi.crt");
        let key_file = dir.join("unifi.key");
        std::fs::write(&cert_file, cert.cert.pem()).expect("write cert");
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).expect("write key");
        ControllerSim {
            key: api_key.to_string(),
            uploads: Arc::default(),
            refused: Arc::default(),
            cert_file,
            key_file,
        }
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.uploads.lock().unwrap().clone()
    }

    /// Requests refused: status and why.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.refused.lock().unwrap().clone()
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/proxy/network/v2/api/site/{site}/bgp/config", post(upload))
            .with_state(self.clone())
    }

    /// Serves on `addr` inside network namespace `ns` on a thread of its own.
    pub fn spawn_in_namespace(&self, ns: &str, addr: SocketAddr) {
        let sim = self.clone();
        let ns = ns.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            crate::netns::run_in(&ns, move || {
                let _ = rustls::crypto::ring::default_provider().install_default();
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(async move {
                        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(
                            &sim.cert_file,
                            &sim.key_file,
                        )
                        .await
                        .expect("TLS config");
                        let server = axum_server::bind_rustls(addr, config);
                        let _ = tx.send(());
                        if let Err(e) = server.serve(sim.router().into_make_service()).await {
                            eprintln!("unifi stand-in: cannot serve on {addr}: {e}");
                        }
                    })
            })
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the UniFi stand-in starts");
    }

    /// What the controller does when it provisions the gateway: FRR's configuration file is
    /// rewritten from its copy (the last upload) and FRR restarts.
    pub fn reprovision(&self, lab: &mut crate::Lab) {
        let copy = self
            .uploads()
            .last()
            .map(|u| u.frr_bgpd_config.clone())
            .unwrap_or_default();
        lab.stop_frr();
        let conf = Path::new("/etc/frr").join(&lab.gw).join("frr.conf");
        let header = format!(
            "frr defaults traditional\nhostname {}\nlog file {}\nno zebra nexthop kernel enable\n!\n",
            lab.gw,
            lab.dir.path().join("frr.log").display()
        );
        std::fs::write(&conf, header + &copy).expect("write frr.conf");
        lab.start_frr();
    }
}

async fn upload(
    State(sim): State<ControllerSim>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let refuse = |status: StatusCode, why: String| {
        sim.refused
            .lock()
            .unwrap()
            .push((status.as_u16(), why.clone()));
        (status, why)
    };
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(sim.key.as_str()) {
        return refuse(StatusCode::UNAUTHORIZED, "api.err.Invalid API key".into());
    }
    if site != "default" {
        return refuse(StatusCode::NOT_FOUND, format!("no site {site}"));
    }
    let doc: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("not JSON: {e}")),
    };
    let Some(fields) = doc.as_object() else {
        return refuse(StatusCode::BAD_REQUEST, "not an object".into());
    };
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    keys.sort();
    if keys
        != [
            "description",
            "enabled",
            "frr_bgpd_config",
            "uploaded_file_name",
        ]
    {
        return refuse(StatusCode::BAD_REQUEST, format!("fields {keys:?}"));
    }
    let text = |k: &str| fields[k].as_str().map(str::to_string);
    match (
        fields["enabled"].as_bool(),
        text("description"),
        text("frr_bgpd_config"),
        text("uploaded_file_name"),
    ) {
        (Some(true), Some(description), Some(config), Some(name)) => {
            sim.uploads.lock().unwrap().push(Upload {
                at: Instant::now(),
                frr_bgpd_config: config,
                description,
                uploaded_file_name: name,
            });
            (StatusCode::OK, "{}".into())
        }
        _ => refuse(StatusCode::BAD_REQUEST, format!("field types: {doc}")),
    }
}
