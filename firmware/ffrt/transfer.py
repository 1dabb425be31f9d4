"""Chunked weight transfers for the protocol server: EXPORT_* and IMPORT_* requests.

An export streams the live net: at EXPORT_BEGIN the file's size and CRC are computed by
streaming the encoding (nothing the file's size is held; srv.export keeps the size and
the stored CRC), and each chunk is encoded on demand by ffw_write.encode_range. The
server keeps the weights still while it is open.

An `Import` stages the file in storage's import.tmp (else in a RAM buffer), chunk by chunk
and in order; a file larger than the running model's is refused at once, and a chunk that
was staged before is acknowledged again, not written twice. `commit` checks the
transfer's CRC, then every .ffw check, and only then replaces the weights: through a
checkpoint when there is storage (ffrt.storage.Storage.commit_stage), else straight from
RAM (ffw.load_stream). On a refusal (an FFWError: the server answers E_REFUSED) the net
is untouched.
"""

import gc
import struct

from ffrt import ffw
from ffrt import proto as P
from ffrt.crc32 import crc32
from ffrt.proto import Reply


class Import:
    """A file of size bytes with CRC-32 crc, staged chunk by chunk (module docstring)."""

    def __init__(self, net, size, crc, storage):
        self.size = size
        self.crc = crc
        self.staged = 0
        self._got = 0
        self._storage = storage
        self._buf = None
        m = ffw.file_size(net.cfg)
        if size > m:  # could never fit this net: refused before it fills flash or RAM
            raise ffw.FFWError("size mismatch: %d bytes, the model's file is %d" % (size, m))
        if storage is not None:
            storage.stage_open()
        else:
            self._buf = bytearray(size)

    def chunk(self, off, data):
        """Stage data at off; return the bytes staged through this chunk."""
        end = off + len(data)
        if off == self.staged:
            if end > self.size:
                raise Reply(P.E_BAD_VALUE, "chunk ends at %d, past the %d bytes announced"
                            % (end, self.size))
            if self._buf is None:
                self._storage.stage_write(data)
            else:
                self._buf[off:end] = data
            self.staged = end
            self._got = crc32(data, self._got)
        elif end > self.staged:  # a chunk staged before is acknowledged again, nothing else
            raise Reply(P.E_BAD_STATE, "chunk at offset %d, %d bytes staged" % (off, self.staged))
        return end

    def commit(self, net):
        """Check everything, then replace net's state by the file's (FFWError: untouched)."""
        if self.staged != self.size:
            self.close(True)
            raise Reply(P.E_BAD_STATE, "%d of %d bytes staged" % (self.staged, self.size))
        if self._got != self.crc:
            self.close(True)
            raise ffw.FFWError("CRC mismatch (IMPORT_BEGIN says 0x%08x, the chunks give 0x%08x)"
                               % (self.crc, self._got))
        self.close()
        if self._buf is None:
            self._storage.commit_stage(net, self.size)
        else:
            from ffrt.ffw_ram import BytesReader  # a board without storage only
            ffw.load_stream(net, BytesReader(self._buf), self.size)
        self._buf = None

    def close(self, drop=False):
        """Close the stage; drop=True: the import is over, delete what was staged."""
        if self._storage is not None:
            self._storage.stage_close(drop)
        if drop:
            self._buf = None


# The bodies (struct formats; ffkit.board.client packs and reads them with these names)
BEGIN = "<II"        # IMPORT_BEGIN's body and EXPORT_BEGIN's reply: u32 size, u32 CRC
EXPORT_CHUNK_BODY = "<IH"   # u32 offset, u16 bytes; the reply and IMPORT_CHUNK's body:
OFFSET = "<I"        # u32 offset, then the bytes; IMPORT_CHUNK's reply: u32 bytes staged

# ---- the requests (each fills srv.enc.body and returns its length) -------------------------

def _export_begin(srv, body):
    srv.need(body, 0)
    from ffrt import ffw_write  # the writer: an import never loads it
    stored = ffw_write.stream_crc(srv.net)[0]
    size = ffw.file_size(srv.net.cfg)
    srv.export = (size, stored)  # the open export: the file's size and its stored CRC
    srv.touch()
    # the CRC the file stores (of every byte before it), which names these weights; the
    # CRC of the whole file would be CRC-32's residue, the same for every valid file
    struct.pack_into(BEGIN, srv.enc.body, 0, size, stored)
    return 8


def _export_chunk(srv, body):
    srv.need(body, 6)
    if srv.export is None:
        raise Reply(P.E_BAD_STATE, "no export open (EXPORT_BEGIN first)")
    srv.touch()
    off, n = struct.unpack_from(EXPORT_CHUNK_BODY, body, 0)
    size, stored = srv.export
    if n > P.CHUNK or off + n > size:
        raise Reply(P.E_BAD_VALUE, "chunk %d+%d is past the file's %d bytes or over %d"
                    % (off, n, size, P.CHUNK))
    from ffrt import ffw_write
    struct.pack_into(OFFSET, srv.enc.body, 0, off)
    ffw_write.encode_range(srv.net, off, srv.enc.body[4:], n, crc=stored)
    return 4 + n


def _export_end(srv, body):
    srv.need(body, 0)
    srv.export = None
    return 0


def _import_begin(srv, body):
    srv.need(body, 8)
    srv.still()
    if srv.import_ is not None:
        srv.import_.close(True)
        srv.import_ = None
    size, crc = struct.unpack_from(BEGIN, body, 0)
    srv.import_ = Import(srv.net, size, crc, srv.storage)
    srv.touch()
    return 0


def _import_chunk(srv, body):
    if srv.import_ is None:
        raise Reply(P.E_BAD_STATE, "no import open (IMPORT_BEGIN first)")
    if len(body) < 4:
        srv.need(body, 4)
    srv.touch()
    end = srv.import_.chunk(struct.unpack_from(OFFSET, body, 0)[0], body[4:])
    struct.pack_into(OFFSET, srv.enc.body, 0, end)
    gc.collect()  # see _import_commit
    return 4


def _import_commit(srv, body):
    srv.need(body, 0)
    if srv.import_ is None:
        raise Reply(P.E_BAD_STATE, "no import open (IMPORT_BEGIN first)")
    srv.still()
    imp = srv.import_
    srv.import_ = None  # whatever the outcome, this import is over
    # Each chunk's garbage is collected as it comes (_import_chunk), so how many chunks
    # came (the host shrinks them on a lossy line) does not fragment the heap that the
    # commit then needs: without it a 96K board failed commits of 64-byte chunks.
    gc.collect()
    imp.commit(srv.net)
    return srv.reply_step()


HANDLERS = {P.EXPORT_BEGIN: _export_begin, P.EXPORT_CHUNK: _export_chunk,
            P.EXPORT_END: _export_end, P.IMPORT_BEGIN: _import_begin,
            P.IMPORT_CHUNK: _import_chunk, P.IMPORT_COMMIT: _import_commit}
