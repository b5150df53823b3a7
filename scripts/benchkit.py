"""What the bench scripts share."""
import atexit
import os
import subprocess
import sys
import tempfile


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


class Subjects:
    """The subjects of an interleaved bench, from the script's arguments: `NAME=BINARY` for an
    nsnet binary, `floor` or `NAME=floor` for the floor (scripts/floor.py). Each works in its
    own network namespace (`PREFIX<i>`) and an nsnet subject in its own state directory (its
    DNS responder is stopped at exit). `run` starts every subject's processes the same way."""

    def __init__(self, argv, prefix='host'):
        from floor import Floor
        self.bins = {}  # name -> binary, None for the floor
        for a in argv:
            name, _, path = a.partition('=')
            self.bins[name] = None if path in ('', 'floor') else path
        self.fds, self.env, self.floors = {}, {}, {}
        atexit.register(lambda: stop_responders(e['NSNET_STATE_DIR'] for e in self.env.values()))
        for i, name in enumerate(self.bins):
            subprocess.run(['ip', 'netns', 'add', f'{prefix}{i}'], check=True)
            self.fds[name] = os.open(f'/run/netns/{prefix}{i}', os.O_RDONLY)
            if self.bins[name] is None:
                self.floors[name] = Floor(self.fds[name])
            else:
                self.env[name] = dict(os.environ, NSNET_STATE_DIR=tempfile.mkdtemp())

    def __iter__(self):
        return iter(self.bins)

    def __len__(self):
        return len(self.bins)

    def is_floor(self, name):
        return name in self.floors

    def run(self, name, args):
        """Runs `nsnet ARGS` as subject `name` (the floor does the same work its way); exits
        the script with the subject's error when it fails."""
        if name in self.floors:
            return self.floors[name].run(args)
        p = run_in_netns(self.fds[name], [self.bins[name]] + args, env=self.env[name],
                         capture_output=True)
        if p.returncode:
            sys.exit(f'{name}: {args}: {p.stderr.decode().strip()}')
