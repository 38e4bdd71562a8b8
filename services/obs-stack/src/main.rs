fn main() {
    obs_core::command_line(
        "obs-stack",
        "all five obs-fleet roles in one process, each on its own port.\n\n\
         Usage: obs-stack\n\n\
         Configured by environment variables: <ROLE>_PORT and <ROLE>_METRICS_PORT move a role\n\
         (WATCHER_PORT, CURATOR_PORT, PLANNER_PORT, SYNTHESIZER_PORT, ARCHIVIST_PORT), STATE_DIR\n\
         holds their state (default ./data); the rest as for each role (see the README).",
        false,
    );
    let configs = obs_stack::configs_from_env().unwrap_or_else(|error| error.exit());
    obs_core::telemetry::init(&configs[0]).unwrap_or_else(|error| error.exit());
    let result = obs_core::actix_web::rt::System::new().block_on(async move {
        let stack = obs_stack::Stack::build(configs.clone()).await?;
        print!("{}", obs_stack::describe(&stack.endpoints(), &configs));
        stack.run_until(obs_core::shutdown_signal()).await
    });
    obs_core::exit_with("obs-stack", result)
}
