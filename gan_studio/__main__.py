import sys

from gan_studio.utils.allocator import reexec_with_tuned_allocator

if __name__ == "__main__":
    reexec_with_tuned_allocator(sys.argv[1:])  # before torch is imported; see its docstring
    from gan_studio.cli import main

    raise SystemExit(main())
