fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match shrike_rules::Policy::load(&args) {
        Ok(p) => { print!("{}", shrike_rules::text::list(&p)); print!("{}", shrike_rules::text::explain(&p)); }
        Err(d) => print!("{}", shrike_rules::text::render_diagnostics(&d)),
    }
}
