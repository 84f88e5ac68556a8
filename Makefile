# Conveniences over ./dev, which works on a machine without make. See README.md.
.PHONY: run test doctor deps vmlinux vm-test scenarios bench
run:
	./dev run
test:
	./dev test
doctor:
	./dev doctor
deps:
	./dev deps
vmlinux:
	./dev vmlinux
vm-test:
	./dev vm-test
scenarios:
	./dev scenarios
bench:
	./dev bench
