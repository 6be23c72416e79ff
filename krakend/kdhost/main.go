// Command kdhost is a small stand-in for the KrakenD CE binary, for machines where
// KrakenD itself cannot be built (its modules cannot be fetched). It loads plugins the
// way KrakenD CE v2 does (plugin.Open, the HandlerRegisterer and ClientRegisterer
// symbols, the same registerer interfaces, RegisterLogger with a KrakenD-shaped logger)
// and serves the part of krakend.json that topicgate uses: the service-level
// plugin/http-server, and endpoints whose single backend is a plugin/http-client with
// no-op encoding. It is a test tool, not a gateway: no other KrakenD feature exists here.
//
//	kdhost version
//	kdhost test-plugin [-s] [-c] plugin.so...
//	kdhost check -c krakend.json
//	kdhost run -c krakend.json [-p port]
//
// As in KrakenD, the log level comes from the config (extra_config "telemetry/logging" level).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "version":
		fmt.Println("kdhost (KrakenD-compatible plugin host for tests) Version:", version)
		fmt.Println("Go Version:", strings.TrimPrefix(runtime.Version(), "go"))
	case "test-plugin":
		os.Exit(testPluginCmd(args))
	case "check":
		os.Exit(checkCmd(args))
	case "run":
		os.Exit(runCmd(args))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kdhost version | test-plugin [-s] [-c] plugin.so... | check -c krakend.json | run -c krakend.json [-p port]")
	os.Exit(2)
}

func testPluginCmd(args []string) int {
	fs := flag.NewFlagSet("test-plugin", flag.ExitOnError)
	server := fs.Bool("s", false, "the artifact should contain a server plugin (HandlerRegisterer)")
	client := fs.Bool("c", false, "the artifact should contain a client plugin (ClientRegisterer)")
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		fmt.Println("At least one plugin is required.")
		return 1
	}
	if !*server && !*client {
		fmt.Println("You must declare the expected type of the plugin.")
		return 1
	}
	failed := 0
	for _, path := range fs.Args() {
		ok := true
		reg := newRegistry()
		log := newLogger("ERROR")
		if *server {
			if err := loadServer(path, reg, log); err != nil {
				fmt.Printf("[KO] SERVER\t%s: %v\n", path, err)
				ok = false
			} else {
				fmt.Printf("[OK] SERVER\t%s (registered: %s)\n", path, strings.Join(reg.serverNames(), ","))
			}
		}
		if *client {
			if err := loadClient(path, reg, log); err != nil {
				fmt.Printf("[KO] CLIENT\t%s: %v\n", path, err)
				ok = false
			} else {
				fmt.Printf("[OK] CLIENT\t%s (registered: %s)\n", path, strings.Join(reg.clientNames(), ","))
			}
		}
		if !ok {
			failed++
		}
	}
	if failed > 0 {
		fmt.Printf("[KO] %d tested plugin(s). %d plugin(s) failed.\n", fs.NArg(), failed)
		return 1
	}
	fmt.Printf("[OK] %d tested plugin(s)\n", fs.NArg())
	return 0
}

func checkCmd(args []string) int {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	path := fs.String("c", "krakend.json", "configuration file")
	_ = fs.Parse(args)
	cfg, err := loadConfig(*path)
	if err == nil {
		err = cfg.validate()
	}
	if err != nil {
		fmt.Printf("ERROR parsing the configuration file: %v\n", err)
		return 1
	}
	fmt.Println("Syntax OK!")
	return 0
}

func runCmd(args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	path := fs.String("c", "krakend.json", "configuration file")
	port := fs.Int("p", 0, "port (overrides the config)")
	_ = fs.Parse(args)
	cfg, err := loadConfig(*path)
	if err == nil {
		err = cfg.validate()
	}
	if err != nil {
		newLogger("DEBUG").Critical("[SERVICE] bad configuration:", err)
		return 1
	}
	log := newLogger(cfg.logLevel())
	if *port != 0 {
		cfg.Port = *port
	}
	if err := serve(cfg, log); err != nil {
		log.Critical("[SERVICE]", err)
		return 1
	}
	return 0
}
