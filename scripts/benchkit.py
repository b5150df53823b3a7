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
