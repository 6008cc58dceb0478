//! The only code that talks to FRR: vtysh, with a timeout on every call.
//!
//! Each vtysh process costs about 0.1 s, so reads are batched: one process runs several `-c`
//! commands and their JSON outputs are split with a streaming parser; a plan is applied as one
//! `vtysh -f` script. Liveness changes take a fast path: straight to bgpd's vty socket.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgplb_frr::{show, FrrVersion};
use bgplb_site::FrrSettings;
use serde::de::DeserializeOwned;
use tokio::process::Command;

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct Vtysh {
    program: PathBuf,
    instance: Option<String>,
    timeout: Duration,
    vty_dir: PathBuf,
    /// The FRR release last seen (every running-config read says it): what to render for.
    version: Arc<Mutex<Option<FrrVersion>>>,
}

/// What FRR runs now.
#[derive(Debug, Clone)]
pub struct Running {
    pub summary: show::Summary,
    /// `show running-config`.
    pub config: String,
}

/// Output of a successful script.
#[derive(Debug, Clone, Default)]
pub struct ScriptOutput {
    /// Lines FRR printed that are not errors (e.g. "reset all peers to take effect").
    pub messages: Vec<String>,
}

struct Output {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Vtysh {
    pub fn new(settings: &FrrSettings) -> Vtysh {
        Vtysh {
            program: settings.vtysh.clone(),
            instance: settings.instance.clone().filter(|i| !i.is_empty()),
            timeout: Duration::from_secs(settings.timeout.max(1)),
            vty_dir: settings.vty_dir.clone(),
            version: Arc::default(),
        }
    }

    /// The FRR release that runs: the one the last running-config read named, else asked with
    /// `show version`. An answer without a version (a vtysh stand-in) gives the reference
    /// release.
    pub async fn frr_version(&self) -> Result<FrrVersion, Error> {
        if let Some(v) = *self.version.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(v);
        }
        let out = self
            .run("show version", &args(&["-c", "show version"]))
            .await?;
        if !out.status.success() {
            return Err(Error::FrrUnavailable {
                what: "show version".into(),
                detail: first_line(&out.stdout, &out.stderr),
            });
        }
        let v = FrrVersion::from_output(&out.stdout).unwrap_or_else(|| {
            tracing::warn!(
                output = %first_line(&out.stdout, &out.stderr),
                "no FRR version in `show version`: rendering for {}",
                FrrVersion::REFERENCE
            );
            FrrVersion::REFERENCE
        });
        self.learn(&v);
        Ok(v)
    }

    fn learn(&self, v: &FrrVersion) {
        let mut known = self.version.lock().unwrap_or_else(|p| p.into_inner());
        if *known != Some(*v) {
            if let Some(old) = *known {
                tracing::warn!(from = %old, to = %v, "FRR's release changed");
            }
            *known = Some(*v);
        }
    }

    async fn run(&self, what: &str, args: &[String]) -> Result<Output, Error> {
        let mut cmd = Command::new(&self.program);
        if let Some(instance) = &self.instance {
            cmd.arg("-N").arg(instance);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        tracing::trace!(?args, "vtysh");
        let child = cmd.spawn().map_err(|source| Error::VtyshSpawn {
            program: self.program.clone(),
            source,
        })?;
        if what == "write memory" {
            // The agent dies while vtysh writes FRR's file (vtysh then dies of SIGPIPE on its
            // next line of output, before, while or after writing).
            crate::fault::point("during-save");
        }
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| Error::VtyshTimeout {
                what: what.to_string(),
                seconds: self.timeout.as_secs(),
            })?
            .map_err(|source| Error::VtyshSpawn {
                program: self.program.clone(),
                source,
            })?;
        Ok(Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// bgpd's summary and the running config, in one vtysh call. Fails when bgpd is down (vtysh
    /// then still prints zebra's config, which must not be mistaken for an empty BGP config).
    pub async fn running(&self) -> Result<Running, Error> {
        let what = "show bgp summary json; show running-config";
        let out = self
            .run(
                what,
                &args(&["-c", "show bgp summary json", "-c", "show running-config"]),
            )
            .await?;
        let unavailable = |detail: String| Error::FrrUnavailable {
            what: what.to_string(),
            detail,
        };
        if !out.status.success() || !out.stdout.trim_start().starts_with('{') {
            return Err(unavailable(first_line(&out.stdout, &out.stderr)));
        }
        let mut stream =
            serde_json::Deserializer::from_str(&out.stdout).into_iter::<serde_json::Value>();
        let summary = match stream.next() {
            Some(Ok(v)) => serde_json::from_value(v).map_err(|e| show::ParseError {
                command: "show bgp summary json".into(),
                message: e.to_string(),
            })?,
            _ => return Err(unavailable(first_line(&out.stdout, &out.stderr))),
        };
        let config = out.stdout[stream.byte_offset()..].to_string();
        if !config.contains("Current configuration:") {
            return Err(unavailable(
                "no running configuration in vtysh's output".into(),
            ));
        }
        if let Some(v) = FrrVersion::from_output(&config) {
            self.learn(&v);
        }
        Ok(Running { summary, config })
    }

    /// One `show` command's text, as vtysh prints it (for people: `troubleshoot`'s bundle).
    pub async fn show_text(&self, command: &str) -> Result<String, Error> {
        let out = self.run(command, &args(&["-c", command])).await?;
        if !out.status.success() {
            return Err(Error::FrrUnavailable {
                what: command.to_string(),
                detail: first_line(&out.stdout, &out.stderr),
            });
        }
        Ok(out.stdout)
    }

    /// Runs several `show ... json` commands in one vtysh process.
    pub async fn show_json<T: DeserializeOwned>(
        &self,
        commands: &[String],
    ) -> Result<Vec<T>, Error> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut argv = Vec::new();
        for c in commands {
            argv.push("-c".to_string());
            argv.push(c.clone());
        }
        let what = commands.join("; ");
        let out = self.run(&what, &argv).await?;
        if !out.status.success() {
            return Err(Error::FrrUnavailable {
                what,
                detail: first_line(&out.stdout, &out.stderr),
            });
        }
        let mut values = Vec::new();
        let stream = serde_json::Deserializer::from_str(&out.stdout).into_iter::<T>();
        for (value, command) in stream.zip(commands) {
            values.push(value.map_err(|e| show::ParseError {
                command: command.clone(),
                message: e.to_string(),
            })?);
        }
        if values.len() != commands.len() {
            return Err(Error::Show(show::ParseError {
                command: what,
                message: format!(
                    "expected {} JSON documents, got {}",
                    commands.len(),
                    values.len()
                ),
            }));
        }
        Ok(values)
    }

    /// Applies a configuration script with `vtysh -f`. FRR keeps applying after a bad line, so
    /// any error line fails the call; the caller verifies by reading back either way.
    pub async fn apply_script(&self, script: &Path) -> Result<ScriptOutput, Error> {
        self.wait_for_mgmtd().await?;
        self.wait_for_bgpd_in_zebra().await;
        let what = format!("vtysh -f {}", script.display());
        let out = self
            .run(&what, &["-f".to_string(), script.display().to_string()])
            .await?;
        let text = format!("{}{}", out.stdout, out.stderr);
        let lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        let down = lines
            .iter()
            .find(|l| l.contains("is not running") || l.contains("failed to connect"));
        if let Some(line) = down {
            return Err(Error::FrrUnavailable {
                what,
                detail: line.clone(),
            });
        }
        let errors: Vec<&str> = lines
            .iter()
            .filter(|l| l.contains("% "))
            .map(|l| l.as_str())
            .collect();
        if !errors.is_empty() {
            return Err(Error::FrrRejected {
                what,
                detail: errors.join(" | "),
            });
        }
        if !out.status.success() {
            return Err(Error::FrrRejected {
                what,
                detail: format!("vtysh exited with {}: {}", out.status, lines.join(" | ")),
            });
        }
        Ok(ScriptOutput { messages: lines })
    }

    /// FRR 9 and later configure zebra through mgmtd, which refuses a configuration session
    /// while a transaction of its own holds its datastore lock, such as the configuration it
    /// pushes to a daemon that has just connected. A script that races that push can reach
    /// zebra as garbage and leave a transaction holding the lock for minutes (seen with FRR
    /// 10.3 seconds after it started; FRR's own tests wait for the same, FRRouting/frr#19183).
    /// So a script first waits, up to the vtysh timeout, until mgmtd has no transaction open.
    /// Without mgmtd (FRR 7.5, 8.x) there is nothing to wait for.
    async fn wait_for_mgmtd(&self) -> Result<(), Error> {
        if !self.socket("mgmtd.vty").exists() {
            return Ok(());
        }
        let what = "show mgmt transaction all";
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let out = self.run(what, &args(&["-c", what])).await?;
            match bgplb_frr::show::open_mgmt_transactions(&out.stdout) {
                // An answer without the count (another FRR's wording): nothing to wait for.
                None | Some(0) => return Ok(()),
                Some(n) if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::FrrUnavailable {
                        what: what.into(),
                        detail: format!(
                            "mgmtd still has {n} configuration transaction(s) open after {} s, \
                             so it would refuse the configuration; one left by a failed commit \
                             can stay for 10 minutes: restart FRR if this repeats",
                            self.timeout.as_secs()
                        ),
                    });
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// bgpd refuses `bgp graceful-restart` with "% Invalid value" until it is connected to
    /// zebra: the command tells zebra at once, and fails when it cannot (every release from 7.5
    /// to 10.3, `VTY_SEND_BGP_GR_CAPABILITY_TO_ZEBRA`). Right after FRR starts, as after a
    /// firmware upgrade or a re-provision, an apply could race that connection and fail for
    /// nothing (found in FRR's source while explaining a 7.5 matrix failure whose real cause was
    /// zebra crashing, see `bgplb_frr::churn`). So a script first waits, up to the vtysh timeout,
    /// until zebra lists bgpd among its clients. When zebra or bgpd does not answer, or answers
    /// in another wording, nothing is waited for: the apply then fails or succeeds as it would.
    async fn wait_for_bgpd_in_zebra(&self) {
        if !self.bgpd_socket().exists() {
            return;
        }
        let what = "show zebra client summary";
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let Ok(out) = self.run(what, &args(&["-c", what])).await else {
                return;
            };
            match bgplb_frr::show::bgpd_is_zebra_client(&out.stdout) {
                None | Some(true) => return,
                Some(false) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!(
                        seconds = self.timeout.as_secs(),
                        "bgpd is not connected to zebra: applying anyway"
                    );
                    return;
                }
                Some(false) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// bgpd's vty socket: `<vty_dir>/bgpd.vty`, or `<vty_dir>/<instance>/bgpd.vty` for an FRR
    /// instance started with `-N`.
    pub fn bgpd_socket(&self) -> PathBuf {
        self.socket("bgpd.vty")
    }

    fn socket(&self, name: &str) -> PathBuf {
        match &self.instance {
            Some(i) => self.vty_dir.join(i).join(name),
            None => self.vty_dir.join(name),
        }
    }

    /// The fast path: configuration lines written straight to bgpd's vty socket, the protocol
    /// vtysh itself speaks (a command ends with NUL; each answer ends with three NULs and a
    /// status byte, 0 for success). No vtysh process: a few milliseconds instead of a hundred.
    /// Every line must succeed; the first that does not fails the call with FRR's message.
    pub async fn bgpd_config(&self, script: &str) -> Result<(), Error> {
        let lines: Vec<&str> = ["enable", "configure terminal"]
            .into_iter()
            .chain(script.lines().map(str::trim).filter(|l| !l.is_empty()))
            .chain(["end"])
            .collect();
        let answers = self.bgpd_vty(&lines, self.timeout).await?;
        match answers.last() {
            Some((status, output)) if *status != 0 => Err(Error::FrrRejected {
                what: format!("bgpd vty {}", self.bgpd_socket().display()),
                detail: format!("`{}`: {}", lines[answers.len() - 1], output.trim()),
            }),
            _ => Ok(()),
        }
    }

    /// bgpd's own running configuration, read from its vty socket (no vtysh process: the FRR
    /// watch asks every second). Holds everything bgplb owns: `router bgp`, the prefix-lists,
    /// community-lists and route-maps bgpd uses. Bounded by `limit` as well as the vtysh timeout.
    pub async fn bgpd_running(&self, limit: Duration) -> Result<String, Error> {
        let answers = self
            .bgpd_vty(&["enable", "show running-config"], limit.min(self.timeout))
            .await?;
        match answers.as_slice() {
            // bgpd's own answer has no "Current configuration:" header (vtysh adds it); it
            // always starts with the `frr version` line.
            [_, (0, config)] if config.contains("frr version") => Ok(config.clone()),
            _ => Err(Error::FrrUnavailable {
                what: format!("bgpd vty {}", self.bgpd_socket().display()),
                detail: format!(
                    "no running configuration on the vty socket (status {})",
                    answers.last().map_or(0, |a| a.0)
                ),
            }),
        }
    }

    /// Runs `lines` on bgpd's vty socket within `limit`, one answer (status, output) per line,
    /// stopping after the first that fails.
    async fn bgpd_vty(&self, lines: &[&str], limit: Duration) -> Result<Vec<(u8, String)>, Error> {
        let path = self.bgpd_socket();
        let what = format!("bgpd vty {}", path.display());
        let unavailable = |e: std::io::Error| Error::FrrUnavailable {
            what: what.clone(),
            detail: e.to_string(),
        };
        let work = async {
            let mut stream = tokio::net::UnixStream::connect(&path)
                .await
                .map_err(unavailable)?;
            let mut answers = Vec::new();
            for line in lines {
                let answer = vty_command(&mut stream, line).await.map_err(unavailable)?;
                let failed = answer.0 != 0;
                answers.push(answer);
                if failed {
                    break;
                }
            }
            Ok(answers)
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Error::VtyshTimeout {
                what: what.clone(),
                seconds: limit.as_secs().max(1),
            })?
    }

    /// bgpd's process id, from the pid file FRR keeps beside the vty socket: a different one
    /// means bgpd was restarted.
    pub fn bgpd_pid(&self) -> Option<u32> {
        let file = self.bgpd_socket().with_file_name("bgpd.pid");
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// `write memory`: FRR restarts with what is running now.
    pub async fn write_memory(&self) -> Result<(), Error> {
        let what = "write memory";
        let out = self.run(what, &args(&["-c", "write memory"])).await?;
        if !out.status.success() {
            return Err(Error::FrrUnavailable {
                what: what.into(),
                detail: first_line(&out.stdout, &out.stderr),
            });
        }
        Ok(())
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn first_line(stdout: &str, stderr: &str) -> String {
    stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("vtysh printed nothing")
        .to_string()
}

/// One command on a vty socket: its status byte and output.
async fn vty_command(
    stream: &mut tokio::net::UnixStream,
    line: &str,
) -> std::io::Result<(u8, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut command = line.as_bytes().to_vec();
    command.push(0);
    stream.write_all(&command).await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "bgpd closed the vty socket",
            ));
        }
        answer.extend_from_slice(&buf[..n]);
        let len = answer.len();
        if len >= 4 && answer[len - 4..len - 1] == [0, 0, 0] {
            let status = answer[len - 1];
            answer.truncate(len - 4);
            return Ok((status, String::from_utf8_lossy(&answer).into_owned()));
        }
    }
}
