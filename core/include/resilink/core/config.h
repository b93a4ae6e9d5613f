// Compile-time capacities of the core engine, all in one place.
//
// Every value can be overridden by defining the macro before this header is
// included (usually with -D on the compiler command line). The defaults suit a
// small microcontroller; the Linux build raises some of them (see
// CMakeLists.txt). Memory per Engine is roughly
//   RESILINK_RX_QUEUE * (RESILINK_MAX_LINE + 2)
// + RESILINK_TX_WINDOW * (RESILINK_MAX_LINE + 16)
// + RESILINK_TX_BUFFER + RESILINK_MAX_LINE + 80 bytes.
#ifndef RESILINK_CORE_CONFIG_H
#define RESILINK_CORE_CONFIG_H

// Longest line accepted or sent, counting the two-digit message id but not the
// terminating '\n'. A message payload may therefore hold RESILINK_MAX_LINE - 2
// bytes. A longer received line is a protocol error that closes the link.
#ifndef RESILINK_MAX_LINE
#define RESILINK_MAX_LINE 256
#endif

// Longest message payload: the line less its two-digit message id.
#define RESILINK_MAX_PAYLOAD (RESILINK_MAX_LINE - 2)

// Received messages held for the application. When full, further messages are
// neither acknowledged nor recorded as seen, so the sender retransmits them.
#ifndef RESILINK_RX_QUEUE
#define RESILINK_RX_QUEUE 4
#endif

// qos messages sent but not yet acknowledged (the in-flight window).
#ifndef RESILINK_TX_WINDOW
#define RESILINK_TX_WINDOW 4
#endif

// Bytes queued for the socket that the driver has not yet taken. Must hold at
// least one full line; when it cannot take a line the writer waits.
#ifndef RESILINK_TX_BUFFER
#define RESILINK_TX_BUFFER (2 * (RESILINK_MAX_LINE + 1))
#endif

// Longest client id, in bytes, not counting the '\n'.
#ifndef RESILINK_MAX_ID
#define RESILINK_MAX_ID 32
#endif

// 1: error_description()/outage_reason_description() return sentences;
// 0: they return the short names, saving about 1.2 KB of flash.
#ifndef RESILINK_ERROR_TEXT
#define RESILINK_ERROR_TEXT 0
#endif

#if RESILINK_MAX_LINE < 3
#error "RESILINK_MAX_LINE must allow a mid and a one-byte payload"
#endif
#if RESILINK_TX_WINDOW < 1 || RESILINK_TX_WINDOW > 64
#error "RESILINK_TX_WINDOW must be 1..64 (mids wrap at 255; the peer forgets 128 ahead)"
#endif
#if RESILINK_TX_BUFFER < RESILINK_MAX_LINE + 1
#error "RESILINK_TX_BUFFER must hold one full line"
#endif
#if RESILINK_RX_QUEUE < 1
#error "RESILINK_RX_QUEUE must be at least 1"
#endif

#endif
