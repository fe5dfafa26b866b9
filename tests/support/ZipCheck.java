// Reads a zip the two ways java.util.zip offers and fails loudly on any problem:
// ZipInputStream (streaming: trusts local headers; the mode that breaks on STORED
// entries with data descriptors) and ZipFile (central directory). Prints the entry
// count. Run: java tests/support/ZipCheck.java FILE.zip
import java.io.*;
import java.util.zip.*;

public class ZipCheck {
    public static void main(String[] args) throws Exception {
        int streamed = 0;
        byte[] buf = new byte[65536];
        try (ZipInputStream in = new ZipInputStream(new BufferedInputStream(new FileInputStream(args[0])))) {
            ZipEntry e;
            while ((e = in.getNextEntry()) != null) {
                long n = 0;
                int r;
                while ((r = in.read(buf)) > 0) n += r;
                if (!e.isDirectory() && e.getSize() >= 0 && n != e.getSize())
                    throw new IOException(e.getName() + ": read " + n + " bytes, header says " + e.getSize());
                streamed++;
            }
        }
        int listed = 0;
        try (ZipFile z = new ZipFile(args[0])) {
            var en = z.entries();
            while (en.hasMoreElements()) {
                ZipEntry e = en.nextElement();
                try (InputStream s = z.getInputStream(e)) {
                    CRC32 crc = new CRC32();
                    int r;
                    while ((r = s.read(buf)) > 0) crc.update(buf, 0, r);
                    if (!e.isDirectory() && crc.getValue() != e.getCrc())
                        throw new IOException(e.getName() + ": CRC mismatch");
                }
                listed++;
            }
        }
        if (streamed != listed) throw new IOException("streamed " + streamed + " entries, listed " + listed);
        System.out.println(listed);
    }
}
