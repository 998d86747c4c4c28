//! `sandman-local smoke` against the local stack: every step passes, and it leaves nothing behind.

use e2b_emulator::Route;
use sandman::clock::Clock;
use sandman::domain::{ProjectId, ProjectKey, TeamId};
use sandman_local::dev::{DevOptions, start};
use sandman_local::smoke::{Minting, Smoke};
use sandman_local::testkit::TestTable;

#[tokio::test]
async fn smoke_opens_pauses_and_cleans_up_a_throwaway_project() {
    let table = TestTable::create().await;
    let stack = start(DevOptions::ephemeral(table.name.clone(), false, Clock::System))
        .await
        .expect("the local stack starts");
    let secret = stack
        .sandman
        .secrets
        .jwt_hs256_secret
        .clone()
        .expect("the stack's HS256 key");
    // The stack's issuer and audience: HS256 tokens must name both.
    let minting = Minting {
        issuer: stack.sandman.config.auth.issuer.clone(),
        audience: stack.sandman.config.auth.audience.clone(),
        team_claim: None,
        team: "smoke-team".into(),
    };
    let smoke = Smoke {
        api_url: format!("{}/", stack.api_url),
        token: minting.token(&secret).unwrap(),
        project: Smoke::throwaway_project(),
        template: "base".into(),
        timeout: std::time::Duration::from_secs(30),
    };
    let lines = std::sync::Mutex::new(Vec::new());
    let result = smoke.run(|line| lines.lock().unwrap().push(line.to_owned())).await;
    let lines = lines.into_inner().unwrap();
    assert!(result.is_ok(), "{result:?}\n{}", lines.join("\n"));
    assert_eq!(lines.len(), 6, "{lines:#?}");

    let key = ProjectKey::new(
        TeamId::parse("smoke-team").unwrap(),
        ProjectId::parse(smoke.project.as_str()).unwrap(),
    );
    assert!(stack.sandman.project(&key).await.is_err(), "the project is deleted");
    let emulator = stack.emulator.as_ref().unwrap();
    let succeeded = |route| emulator.calls_to(route).iter().filter(|c| c.status < 300).count();
    assert_eq!(succeeded(Route::CreateSandbox), 1, "one sandbox was created at E2B");
    assert_eq!(succeeded(Route::PauseSandbox), 1, "paused");
    assert_eq!(succeeded(Route::KillSandbox), 1, "and killed on delete");
    stack.shutdown().await;
}
