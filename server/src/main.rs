fn main() -> std::process::ExitCode {
    outflow::cli::main()
}
