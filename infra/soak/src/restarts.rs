//! DynamoDB Local stopped and started again mid-run, at seeded moments: for a few seconds every
//! call fails with a refused (or reset) connection, then the data is all there again, since the
//! soak's DynamoDB Local keeps it in files (`-dbPath`). `scripts/soak` starts the first process and
//! says, in the environment, how it was started; the soak starts the next ones the same way.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How `scripts/soak` started DynamoDB Local: enough to stop it and start it again alike.
#[derive(Debug)]
pub struct DynamoLocal {
    jar_dir: PathBuf,
    db_dir: PathBuf,
    port: u16,
    log: PathBuf,
    /// The process answering now: the script's first, then the soak's own.
    running: Mutex<Running>,
}

#[derive(Debug)]
enum Running {
    Started(u32),
    Own(Child),
}

/// The variables `scripts/soak` sets (all needed).
const PID: &str = "SOAK_DYNAMODB_PID";
const JAR_DIR: &str = "SOAK_DYNAMODB_JAR_DIR";
const DB_DIR: &str = "SOAK_DYNAMODB_DB_DIR";
const PORT: &str = "SOAK_DYNAMODB_PORT";
const LOG: &str = "SOAK_DYNAMODB_LOG";

/// How long the process may take to stop after SIGTERM, and to answer after starting.
const STOP_WAIT: Duration = Duration::from_secs(10);
const START_WAIT: Duration = Duration::from_secs(60);

impl DynamoLocal {
    /// From the environment `scripts/soak` sets; `None` (the soak then restarts nothing) without it.
    pub fn from_env() -> Option<DynamoLocal> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(DynamoLocal {
            jar_dir: var(JAR_DIR)?.into(),
            db_dir: var(DB_DIR)?.into(),
            port: var(PORT)?.parse().ok()?,
            log: var(LOG)?.into(),
            running: Mutex::new(Running::Started(var(PID)?.parse().ok()?)),
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops the process (SIGTERM, SIGKILL if it lingers), waits `down`, starts a new one on the
    /// same files and port, and returns once it answers (or `Err` saying why not): the real time
    /// DynamoDB was unreachable.
    pub async fn restart(&self, down: Duration) -> Result<Duration, String> {
        let stopped = Instant::now();
        self.stop().await?;
        tokio::time::sleep(down).await;
        self.start()?;
        self.wait_until_answering().await?;
        Ok(stopped.elapsed())
    }

    async fn stop(&self) -> Result<(), String> {
        let pid = match &*self.running() {
            Running::Started(pid) => *pid,
            Running::Own(child) => child.id(),
        };
        signal(pid, "TERM")?;
        let since = Instant::now();
        while self.alive() {
            if since.elapsed() > STOP_WAIT {
                signal(pid, "KILL")?;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The port is free once nothing listens on it any more.
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
            if since.elapsed() > STOP_WAIT * 2 {
                return Err(format!("port {} still answers after DynamoDB Local stopped", self.port));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Whether the process runs (a zombie of the script's does not).
    fn alive(&self) -> bool {
        match &mut *self.running() {
            Running::Own(child) => matches!(child.try_wait(), Ok(None)),
            Running::Started(pid) => std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))),
        }
    }

    fn start(&self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|err| format!("{}: {err}", self.log.display()))?;
        let err_log = log.try_clone().map_err(|err| err.to_string())?;
        let child = Command::new("java")
            .arg(format!(
                "-Djava.library.path={}",
                self.jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(self.jar_dir.join("DynamoDBLocal.jar"))
            .arg("-dbPath")
            .arg(&self.db_dir)
            .args(["-sharedDb", "-disableTelemetry", "-port", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|err| format!("java could not start: {err}"))?;
        // For scripts/soak, should the soak end without stopping it.
        let _ = std::fs::write(self.db_dir.join("soak-restarted.pid"), child.id().to_string());
        *self.running() = Running::Own(child);
        Ok(())
    }

    async fn wait_until_answering(&self) -> Result<(), String> {
        let client = sandman_local::testkit::local_client();
        let since = Instant::now();
        loop {
            let asked = tokio::time::timeout(Duration::from_secs(2), client.list_tables().send()).await;
            if matches!(asked, Ok(Ok(_))) {
                return Ok(());
            }
            if !self.alive() {
                return Err(format!(
                    "DynamoDB Local exited while starting (log: {})",
                    self.log.display()
                ));
            }
            if since.elapsed() > START_WAIT {
                return Err(format!("DynamoDB Local did not answer within {START_WAIT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for DynamoLocal {
    /// The soak's own process ends with the soak; the script's first one is the script's to stop.
    fn drop(&mut self) {
        if let Running::Own(child) = &mut *self.running() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map_err(|err| format!("kill -{name} {pid}: {err}"))?;
    // A process already gone is what was wanted.
    if !status.success() && std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(format!("kill -{name} {pid} failed"));
    }
    Ok(())
}

/// `count` moments, sorted, between 10 % and 85 % of `duration`.
pub fn moments(rng: &mut fastrand::Rng, count: u32, duration: Duration) -> Vec<Duration> {
    let mut at: Vec<Duration> = (0..count).map(|_| duration.mul_f64(0.10 + 0.75 * rng.f64())).collect();
    at.sort();
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_fall_inside_the_run_in_order_and_follow_the_seed() {
        let run = Duration::from_secs(60);
        let at = moments(&mut fastrand::Rng::with_seed(3), 4, run);
        assert_eq!(at.len(), 4);
        assert!(at.windows(2).all(|w| w[0] <= w[1]));
        assert!(at.iter().all(|t| *t >= run.mul_f64(0.10) && *t <= run.mul_f64(0.85)));
        assert_eq!(at, moments(&mut fastrand::Rng::with_seed(3), 4, run));
    }
}
