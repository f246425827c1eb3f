// Package cputime reads the CPU time the process has used, for benchmarks
// that report CPU per operation (cpu-ns/op): on a shared machine that is
// steadier than wall time.
package cputime
