package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"plugin"
	"sort"
	"strings"
)

// The registerer interfaces of KrakenD CE v2 (lura v2 transport/http/{server,client}/plugin).
type serverRegisterer interface {
	RegisterHandlers(func(
		name string,
		handler func(context.Context, map[string]interface{}, http.Handler) (http.Handler, error),
	))
}

type clientRegisterer interface {
	RegisterClients(func(
		name string,
		handler func(context.Context, map[string]interface{}) (http.Handler, error),
	))
}

type loggerRegisterer interface {
	RegisterLogger(interface{})
}

type serverFactory = func(context.Context, map[string]interface{}, http.Handler) (http.Handler, error)
type clientFactory = func(context.Context, map[string]interface{}) (http.Handler, error)

// registry holds the factories plugins registered, by name.
type registry struct {
	servers map[string]serverFactory
	clients map[string]clientFactory
}

func newRegistry() *registry {
	return &registry{servers: map[string]serverFactory{}, clients: map[string]clientFactory{}}
}

func (r *registry) serverNames() []string { return sortedKeys(r.servers) }
func (r *registry) clientNames() []string { return sortedKeys(r.clients) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// scan lists the files of folder whose name contains pattern, as KrakenD does.
func scan(folder, pattern string) ([]string, error) {
	entries, err := os.ReadDir(folder)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.Contains(e.Name(), pattern) {
			out = append(out, filepath.Join(folder, e.Name()))
		}
	}
	return out, nil
}

// lookup opens the plugin and looks symbol up, turning panics into errors.
func lookup(path, symbol string) (sym plugin.Symbol, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	p, err := plugin.Open(path)
	if err != nil {
		return nil, err
	}
	return p.Lookup(symbol)
}

func loadServer(path string, reg *registry, log *logger) error {
	sym, err := lookup(path, "HandlerRegisterer")
	if err != nil {
		return err
	}
	r, ok := sym.(serverRegisterer)
	if !ok {
		return fmt.Errorf("http-server-handler plugin loader: unknown type")
	}
	if lr, ok := sym.(loggerRegisterer); ok {
		lr.RegisterLogger(log)
	}
	r.RegisterHandlers(func(name string, f serverFactory) { reg.servers[name] = f })
	return nil
}

func loadClient(path string, reg *registry, log *logger) error {
	sym, err := lookup(path, "ClientRegisterer")
	if err != nil {
		return err
	}
	r, ok := sym.(clientRegisterer)
	if !ok {
		return fmt.Errorf("http-request-executor plugin loader: unknown type")
	}
	if lr, ok := sym.(loggerRegisterer); ok {
		lr.RegisterLogger(log)
	}
	r.RegisterClients(func(name string, f clientFactory) { reg.clients[name] = f })
	return nil
}

// loadAll loads every plugin of folder matching pattern as client and server plugin.
func loadAll(folder, pattern string, log *logger) (*registry, error) {
	reg := newRegistry()
	files, err := scan(folder, pattern)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := loadClient(f, reg, log); err != nil {
			log.Debug("[SERVICE: Executor Plugin]", f, err)
		}
		if err := loadServer(f, reg, log); err != nil {
			log.Debug("[SERVICE: Handler Plugin]", f, err)
		}
	}
	log.Info("[SERVICE: Plugin Loader] server plugins:", reg.serverNames(), "client plugins:", reg.clientNames())
	return reg, nil
}
