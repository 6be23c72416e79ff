//go:build cgo && !topicgate_nocore

package core

// This file only exports the log trampoline; cgo forbids C definitions in the
// preamble of a file with //export.

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import (
	"unsafe"

	"github.com/topicgate/topicgate/go-plugin/internal/logging"
)

//export topicgateGoLog
func topicgateGoLog(_ unsafe.Pointer, level C.int32_t, message *C.uint8_t, messageLen C.size_t) {
	if message == nil {
		return
	}
	logging.Core(int32(level), C.GoStringN((*C.char)(unsafe.Pointer(message)), C.int(messageLen)))
}
