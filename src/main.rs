fn main() {
    std::process::exit(wgtrain::cli::main());
}
