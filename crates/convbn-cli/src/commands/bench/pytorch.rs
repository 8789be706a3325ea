//! PyTorch side by side: `bench/pytorch_reference.py` (embedded in the binary) run by a Python
//! that has torch and torchvision, for memory (one process per mode) and for time (a `serve`
//! process answering one step at a time, so its steps interleave with ours).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::step::Workload;

/// The reference script, so that the binary works from any directory.
const SCRIPT: &str = include_str!("../../../../../bench/pytorch_reference.py");

/// The Python to use: `--python`, else `$CONVBN_PYTHON`, else the interpreter that
/// `bench/setup_pytorch.sh` installs under the cache, else `python3`.
pub fn python(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    if let Some(p) = std::env::var_os("CONVBN_PYTHON").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let installed = convbn_zoo::assets::cache_dir()
        .join("pytorch")
        .join("python");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("python3")
}

/// Check that `python` imports torch and torchvision; the versions on success.
pub fn probe(python: &PathBuf) -> Result<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import torch, torchvision; print(torch.__version__, torchvision.__version__)",
        ])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} cannot import torch and torchvision ({}); install them with \
             `bench/setup_pytorch.sh` (PyPI wheels, CPU only) or pass --python PATH",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn script_command(python: &PathBuf, sub: &str, w: Workload) -> Command {
    let mut cmd = Command::new(python);
    cmd.args(["-c", SCRIPT, sub, "--model", w.arch.name()])
        .args([
            "--batch",
            &w.batch.to_string(),
            "--size",
            &w.size.to_string(),
        ]);
    crate::allocator::share_with(&mut cmd);
    cmd
}

/// PyTorch's memory for one mode, measured in its own process.
#[derive(Deserialize, Debug, Clone, Copy)]
pub struct Memory {
    /// Bytes autograd saved for backward (parameters excluded).
    pub saved_bytes: usize,
    /// Peak RSS of the process after the model was built.
    pub peak_rss_bytes: u64,
}

/// Measure PyTorch's memory for `mode` in a fresh process.
pub fn memory(python: &PathBuf, w: Workload, mode: &str) -> Result<Memory> {
    let out = script_command(python, "memory", w)
        .args(["--mode", mode])
        .stdin(Stdio::null())
        .output()
        .context("running the PyTorch reference")?;
    if !out.status.success() {
        bail!(
            "PyTorch reference failed for {} {mode}: {}",
            w.arch,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "reading the PyTorch reference's answer {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A PyTorch process holding one model per mode, stepping on request.
pub struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

#[derive(Deserialize)]
struct Reply {
    ms: Option<f64>,
    error: Option<String>,
}

impl Session {
    /// Start `serve` for `modes` and wait until its models are built.
    pub fn start(python: &PathBuf, w: Workload, modes: &[String]) -> Result<Self> {
        let mut child = script_command(python, "serve", w)
            .args(["--modes", &modes.join(",")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the PyTorch reference")?;
        let stdin = child.stdin.take().context("PyTorch stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("PyTorch stdout")?);
        let mut session = Self {
            child,
            stdin,
            stdout,
        };
        let ready = session.read_line()?;
        if !ready.contains("\"ready\"") {
            bail!("the PyTorch reference did not start: {ready}");
        }
        Ok(session)
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .context("reading from PyTorch")?;
        if n == 0 {
            bail!("the PyTorch reference exited early (see its messages above)");
        }
        Ok(line)
    }

    /// Run one training step in `mode`; its wall-clock milliseconds.
    pub fn step(&mut self, mode: &str) -> Result<f64> {
        writeln!(self.stdin, "step {mode}").context("writing to PyTorch")?;
        self.stdin.flush().context("writing to PyTorch")?;
        let line = self.read_line()?;
        let reply: Reply = serde_json::from_str(&line)
            .with_context(|| format!("reading PyTorch's answer {line:?}"))?;
        match (reply.ms, reply.error) {
            (Some(ms), _) => Ok(ms),
            (None, Some(e)) => bail!("PyTorch: {e}"),
            (None, None) => bail!("PyTorch answered {line:?}"),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}
