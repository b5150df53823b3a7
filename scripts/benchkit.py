"""What the bench scripts share."""
import os


def stop_responders(state_dirs):
    """Stops the DNS responders (`nsnet dns serve`) of `state_dirs`: `network create` starts
    one per state directory, and it would outlive the script's sandbox."""
    dirs = set(state_dirs)
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            args = open(f'/proc/{pid}/cmdline', 'rb').read().decode(errors='replace').split('\0')
        except OSError:
            continue
        if '--state-dir' in args[:-1] and args[args.index('--state-dir') + 1] in dirs:
            os.kill(int(pid), 15)


def run_in_netns(fd, argv, **kwargs):
    """`subprocess.run(argv)` in the network namespace `fd`: this (single-threaded) script
    joins it first, so the child is started with vfork + exec rather than a fork of the whole
    Python process that `preexec_fn` forces (about 4 ms of the child's CPU and more wall time
    per process here, charged to whatever the script times)."""
    import ctypes
    import subprocess
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), 'setns')
    return subprocess.run(argv, **kwargs)
