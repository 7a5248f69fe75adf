// The drawing pad: a canvas a person draws a digit on, turned into the model's 28x28 input.
//
// createPad(canvas, { enabled, onStart, onDrawn }) draws white strokes on black; when a stroke
// ends, onDrawn(pixels) gets 784 pixels 0..255 (ink high, row-major), framed as the training
// digits were. showPixels(pixels) puts a 28x28 digit on the pad; clear() empties it.

const SIZE = 28; // the model's input frame
const INNER = 24; // a drawn digit is scaled into a 24 px box, as the training digits were
const INK_THRESHOLD = 30; // canvas pixels darker than this count as background when cropping
// Thick enough that, scaled down to 28x28, strokes are as wide as the training digits' (3-4 px):
// thin strokes make a drawn 1 look like nothing the model has seen.
const PEN_WIDTH = 30;

export function createPad(canvas, { enabled, onStart, onDrawn }) {
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let drawing = false;
  let last = null;
  let showingDigit = false;

  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    showingDigit = false;
  };

  const showPixels = (pixels) => {
    const image = new ImageData(SIZE, SIZE);
    pixels.forEach((v, i) => {
      image.data.set([v, v, v, 255], i * 4);
    });
    const small = document.createElement("canvas");
    small.width = SIZE;
    small.height = SIZE;
    small.getContext("2d").putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    showingDigit = true;
  };

  const pixels = () => {
    // Crop the ink, scale its longer side to INNER px and centre it in the 28x28 frame, then
    // stretch contrast to 0..255: the training digits were framed the same way.
    const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let [x0, y0, x1, y1] = [width, height, -1, -1];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (data[(y * width + x) * 4] > INK_THRESHOLD) {
          x0 = Math.min(x0, x);
          y0 = Math.min(y0, y);
          x1 = Math.max(x1, x);
          y1 = Math.max(y1, y);
        }
      }
    }
    if (x1 < 0) return null;
    const w = x1 - x0 + 1;
    const h = y1 - y0 + 1;
    const scale = INNER / Math.max(w, h);
    const small = document.createElement("canvas");
    small.width = SIZE;
    small.height = SIZE;
    const smallCtx = small.getContext("2d", { willReadFrequently: true });
    smallCtx.fillStyle = "#000";
    smallCtx.fillRect(0, 0, SIZE, SIZE);
    smallCtx.imageSmoothingEnabled = true;
    smallCtx.imageSmoothingQuality = "high";
    smallCtx.drawImage(canvas, x0, y0, w, h, (SIZE - w * scale) / 2, (SIZE - h * scale) / 2, w * scale, h * scale);
    const rgba = smallCtx.getImageData(0, 0, SIZE, SIZE).data;
    const gray = Array.from({ length: SIZE * SIZE }, (_, i) => rgba[i * 4]);
    const top = Math.max(...gray) || 1;
    return gray.map((v) => Math.round((v * 255) / top));
  };

  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * canvas.width) / box.width,
      ((event.clientY - box.top) * canvas.height) / box.height,
    ];
  };

  canvas.addEventListener("pointerdown", (event) => {
    if (!enabled()) return;
    // A picked sample is on the pad: start a fresh drawing instead of scribbling over it.
    if (showingDigit) clear();
    onStart();
    drawing = true;
    last = at(event);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const point = at(event);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = PEN_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...point);
    ctx.stroke();
    last = point;
  });
  const finish = () => {
    if (!drawing) return;
    drawing = false;
    const drawn = pixels();
    if (drawn) onDrawn(drawn);
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);

  clear();
  return { clear, showPixels };
}
