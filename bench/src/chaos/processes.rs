//! What the drill does to the processes: worker processes started, SIGKILLed and started
//! again, the dev server stopped and started on its database; the moments drawn from a seed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;

/// A small xorshift generator: the drill's moments, reproducible from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Milliseconds in `[lo, hi)`.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo).max(1))
    }
}

/// The processes the drill kills and restarts.
pub struct Processes {
    pub worker: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    pub workers: [Option<tokio::process::Child>; 2],
    pub server: Option<tokio::process::Child>,
    pub started_workers: usize,
}

impl Processes {
    pub fn start_worker(&mut self, slot: usize) -> anyhow::Result<()> {
        if self.workers[slot].is_some() {
            return Ok(());
        }
        self.started_workers += 1;
        let log = std::fs::File::create(self.dir.join(format!("worker-{}.log", self.started_workers)))?;
        let child = crate::worker_command(&self.worker, &self.config, self.port)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.worker.display()))?;
        self.workers[slot] = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crashed machine would stop it.
    pub async fn kill_worker(&mut self, slot: usize) -> bool {
        match self.workers[slot].take() {
            Some(mut child) => {
                let _ = child.kill().await;
                true
            }
            None => false,
        }
    }

    /// A worker that exited on its own is started again (and counted).
    pub fn exited_on_their_own(&mut self) -> usize {
        let mut exited = 0;
        for slot in self.workers.iter_mut() {
            if let Some(child) = slot
                && child.try_wait().ok().flatten().is_some()
            {
                *slot = None;
                exited += 1;
            }
        }
        exited
    }

    pub fn start_server(&mut self) -> anyhow::Result<()> {
        let temporal = tollgate_starter::dev::find_temporal()?;
        let mut args: Vec<String> = ["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--log-level", "error"]
            .map(String::from)
            .to_vec();
        args.extend(["--port".into(), self.port.to_string()]);
        args.extend(["--db-filename".into(), self.dir.join("temporal.db").display().to_string()]);
        args.extend(tollgate_workflows::search_attributes::dev_server_args());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log"))?;
        self.server = Some(
            tokio::process::Command::new(&temporal)
                .args(args)
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", temporal.display()))?,
        );
        Ok(())
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to go.
    pub async fn stop_server(&mut self) -> anyhow::Result<()> {
        if let Some(mut server) = self.server.take() {
            if let Some(pid) = server.id() {
                let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
            if tokio::time::timeout(Duration::from_secs(20), server.wait()).await.is_err() {
                let _ = server.kill().await;
            }
        }
        Ok(())
    }
}
