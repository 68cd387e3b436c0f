#!/usr/bin/env python3
"""gen-nodemods.py DIR N: writes N small JavaScript-like files (1-4 KiB) under DIR/node_modules,
in packages of 5 to 60 files with nested directories, about 1,500 packages for 50,000 files.
The tree depends only on N (a fixed seed), so every build of the image is the same; the text
compresses about 3:1 with gzip, as real sources do. Used by hack/images.sh nodemods."""
import os
import random
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, total = sys.argv[1], int(sys.argv[2])
    rng = random.Random(20261202)
    vocab = ("const let var function return if else for of in while switch case break new this "
             "await async yield import export default from require module exports class extends "
             "super null undefined true false typeof instanceof try catch finally throw Promise "
             "Object Array String Number Map Set JSON Symbol resolve reject then value key item "
             "index length push pop shift slice splice concat filter map reduce forEach find "
             "options config callback error result data buffer stream emit listener").split()
    subdirs = ["", "lib", "src", "dist", "dist/cjs", "dist/esm", "lib/internal", "test", "types"]

    def ident():
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))

    def text(size):
        lines, n = [], 0
        while n < size:
            words = [rng.choice(vocab) if rng.random() < 0.75 else ident() for _ in range(rng.randint(2, 11))]
            line = "  " * rng.randint(0, 3) + " ".join(words) + (";\n" if rng.random() < 0.8 else " {\n")
            lines.append(line)
            n += len(line)
        return "".join(lines)[:size]

    made = packages = 0
    while made < total:
        packages += 1
        name = "pkg-%05d" % packages
        if packages % 6 == 0:
            name = "@org%02d/%s" % (packages % 29, name)
        base = os.path.join(root, "node_modules", name)
        for i in range(rng.randint(5, 60)):
            if made == total:
                break
            d = os.path.join(base, rng.choice(subdirs))
            os.makedirs(d, exist_ok=True)
            if i == 0:
                fname = "package.json"
            elif i % 9 == 0:
                fname = "README-%d.md" % i
            else:
                fname = "%s-%d.js" % (ident(), i)
            with open(os.path.join(d, fname), "w") as f:
                f.write(text(rng.randint(1024, 4096)))
            made += 1
    print("gen-nodemods: %d files in %d packages under %s" % (made, packages, root), file=sys.stderr)


if __name__ == "__main__":
    main()
