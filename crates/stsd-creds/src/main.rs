//! The `stsd-creds` binary: see the crate documentation and `stsd-creds --help`.

fn main() {
    std::process::exit(stsd_creds::cli::main());
}
