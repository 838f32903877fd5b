"""Copy facenet-pytorch's MTCNN weights (pnet.pt, rnet.pt, onet.pt) out of its wheel."""
import sys
import zipfile
from pathlib import Path

wheel, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        data = z.read(f"facenet_pytorch/data/{name}")
        tmp = out / f".{name}.part"
        tmp.write_bytes(data)
        tmp.replace(out / name)
        print(f"models/mtcnn/{name}: {len(data)} bytes")
