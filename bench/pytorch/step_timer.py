"""The one way the PyTorch step scripts time a step: `warmup` untimed calls, then the median of `steps` calls in
milliseconds, each timed by CUDA events on a GPU (waiting for its end) or by the wall clock on the CPU."""
import statistics
import time


def median_step_ms(run, warmup, steps, cuda):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        if cuda:
            import torch
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            run()
            times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def torch_device(name, threads):
    """The device to time on, set up the same way for every script: `threads` CPU threads (0: PyTorch's default),
    cudnn.benchmark on a GPU."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(name)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return dev
