//! svwait: wait until services are up, ready, down or gone (being written).
fn main() {
    std::process::exit(100);
}
