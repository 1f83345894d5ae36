def add_arguments(parser):
    pass


def main(args):
    raise SystemExit("bench: not written yet")
