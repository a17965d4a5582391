"""The benchmark harness behind `make bench` (`python bench/run.py --help`)."""
