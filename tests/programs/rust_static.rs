// A static Rust program for the sandbox tests: std's start-up, the heap,
// hashing (getrandom seeds), standard input and output, and an exit code.
use std::collections::HashMap;
use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in input.split_whitespace() {
        *counts.entry(w).or_default() += 1;
    }
    let mut words: Vec<_> = counts.into_iter().collect();
    words.sort();
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "args: {:?}", &args[1..]).unwrap();
    for (w, n) in &words {
        writeln!(out, "{w}: {n}").unwrap();
    }
    let v: Vec<u64> = (0..200_000).map(|i| i * i % 1_000_003).collect();
    let sum: u64 = v.iter().sum();
    writeln!(out, "sum: {sum}").unwrap();
    out.flush().unwrap();
    std::process::exit((words.len() % 256) as i32);
}
