#ifndef AIRAVATA_CHIREDIS_SHIM_H
#define AIRAVATA_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

// redisReaderGetError is a function-like macro, which Swift cannot import.
static inline const char *CHiredis_readerError(redisReader *reader) {
    return reader->errstr;
}

// The reply's element vector, typed for Swift (a macro-free accessor of a struct field).
static inline redisReply *CHiredis_replyElement(const redisReply *reply, size_t index) {
    return reply->element[index];
}

#endif
