"""The command line's rooms: each module adds its commands to the parser (cli.py)
and holds their handlers, which stay thin: read files and settings, call a pure function,
write files."""
