use grove::greenlet::{getcurrent, Greenlet};
fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(5_000_000);
    if mode == "g" || mode.is_empty() {
        let main = getcurrent::<()>();
        let g = Greenlet::new(move |()| loop {
            main.switch(());
        });
        let t = std::time::Instant::now();
        for _ in 0..n {
            g.switch(());
        }
        println!("greenlet rt {:?}", t.elapsed() / n as u32);
    }
    if mode == "y" || mode.is_empty() {
        let per = n / 1000;
        let nt: u64 = std::env::var("NT")
            .ok()
            .map(|s| s.parse().unwrap())
            .unwrap_or(1000);
        let per = n / nt;
        let hs: Vec<_> = (0..nt)
            .map(|_| {
                grove::spawn(move || {
                    for _ in 0..per {
                        grove::yield_now()
                    }
                })
            })
            .collect();
        let t = std::time::Instant::now();
        grove::join_all(hs);
        println!("yield {:?}", t.elapsed() / n as u32);
    }
    if mode == "s" || mode.is_empty() {
        let t = std::time::Instant::now();
        for _ in 0..n {
            grove::spawn(|| 1).join().unwrap();
        }
        println!("spawn+join {:?}", t.elapsed() / n as u32);
    }
}
