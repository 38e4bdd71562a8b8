fn main() {
    let configs = obs_stack::configs_from_env().unwrap_or_else(|error| error.exit());
    obs_core::telemetry::init(&configs[0]).unwrap_or_else(|error| error.exit());
    let result = obs_core::actix_web::rt::System::new().block_on(async move {
        let stack = obs_stack::Stack::build(configs.clone()).await?;
        print!("{}", obs_stack::describe(&stack.endpoints(), &configs));
        stack.run_until(obs_core::shutdown_signal()).await
    });
    obs_core::exit_with("obs-stack", result)
}
