use monitor_core::monitor_performance;

trait Work {
    #[monitor_performance]
    fn work(&self);
}

struct Job;

impl Work for Job {
    fn work(&self) {}
}

fn main() {
    Job.work();
}
