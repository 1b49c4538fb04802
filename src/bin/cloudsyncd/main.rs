//! cloudsyncd: the scheduling daemon (work in progress).
fn main() {
    eprintln!("cloudsyncd: not built yet");
    std::process::exit(1);
}
