// Package scripts holds no code: its tests run the shell scripts beside
// them (run-cluster.sh) as an operator would and check what they promise.
package scripts
