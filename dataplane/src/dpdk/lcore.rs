//! Launching closures on EAL worker lcores (`rte_eal_remote_launch`).

use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::eal::Eal;
use super::error::{DpdkError, RteError};

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `launch`, consumed exactly once.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // A panic must not unwind into C.
    catch_unwind(AssertUnwindSafe(job)).unwrap_or(-1)
}

/// A job running on a worker lcore; [`LcoreJob::wait`] joins it.
#[derive(Debug)]
#[must_use = "wait for the lcore job"]
pub struct LcoreJob {
    lcore: u32,
    waited: bool,
}

/// Runs `f` on worker lcore `lcore` (which must be idle). Its return value
/// comes back from [`LcoreJob::wait`]; a panic comes back as `-1`.
///
/// # Errors
/// [`DpdkError::Launch`] (`EBUSY`: the lcore is running something).
pub fn launch<F>(_eal: &Eal, worker: usize, lcore: u32, f: F) -> Result<LcoreJob, DpdkError>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    let job: Box<Job> = Box::new(Box::new(f));
    let arg = Box::into_raw(job).cast::<c_void>();
    // SAFETY: EAL initialised; trampoline matches lcore_function_t; arg is a
    // leaked box that the trampoline reclaims.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if ret < 0 {
        // SAFETY: not launched, so we still own the box.
        drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
        return Err(DpdkError::Launch {
            worker,
            lcore,
            err: RteError::from_ret(ret),
        });
    }
    Ok(LcoreJob {
        lcore,
        waited: false,
    })
}

impl LcoreJob {
    /// Waits for the job to finish and returns its value. O(job).
    pub fn wait(mut self) -> i32 {
        self.waited = true;
        // SAFETY: EAL initialised (the job was launched); waits on that lcore.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) }
    }

    /// The lcore it runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }
}

impl Drop for LcoreJob {
    fn drop(&mut self) {
        if !self.waited {
            // SAFETY: as in `wait`; never leave a job running past its handle.
            unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) };
        }
    }
}
