// The built-in calibration text: original prose written for bitscale (public domain, CC0), mixing
// narrative, dialogue, numbers, lists and a little code so that common token types all occur.
// Used when `--calib` is not given; no download needed. Name and version are recorded in manifests.
export const BUILTIN_CALIBRATION_NAME = 'bitscale-builtin-v1';

export const BUILTIN_CALIBRATION_TEXT = `Once upon a time, in a small town by the sea, there lived a girl named Mia who loved to build things. Every morning she walked to the harbour with her little dog, Pip, and watched the fishing boats come in. "Why do the boats have so many ropes?" she asked her grandfather one day. He smiled and said, "Each rope has a job. One holds the sail, one ties the boat, and one helps us pull the nets." Mia thought about this for a long time.
The next day it rained. Mia stayed inside and drew a plan for a boat of her own. She wrote a list: wood, nails, a hammer, paint, and a very long rope. Her brother Tom laughed. "You can't build a boat in the kitchen!" But Mia did not give up. She built a small one first, no longer than her arm, and floated it in the bath. It tipped over. She added a heavy stone to the bottom, and this time it stayed upright. She was so happy that she danced around the room.
When spring came, the whole family helped. Grandfather cut the planks, Tom painted the sides blue and yellow, and Mia tied every knot herself. On the first sunny Saturday of May they carried the boat to the water. It floated! Pip barked and jumped in, and everyone cheered.
Science notes. Water is made of hydrogen and oxygen. At sea level it boils at 100 degrees Celsius (212 degrees Fahrenheit) and freezes at 0 degrees. A cubic metre of fresh water weighs about 1000 kilograms, while sea water is a little heavier, about 1025 kilograms, because of the salt. Light travels at roughly 300,000 kilometres per second; sound in air moves at about 343 metres per second.
A short history. The first printed books in Europe appeared in the fifteenth century. Before that, books were copied by hand, which took months or even years. Printing made books cheaper, and more people learned to read. Today a phone can hold thousands of books, and a library can be searched in less than a second.
How to make bread: 1. Mix 500 g of flour, 10 g of salt and 7 g of yeast. 2. Add 320 ml of warm water and knead for ten minutes. 3. Let the dough rise for one hour. 4. Shape it, let it rise again for 45 minutes, and bake at 230 °C for 30 to 35 minutes.
Questions and answers. Q: What is the capital of France? A: Paris. Q: How many legs does a spider have? A: Eight. Q: What is 12 times 12? A: 144. Q: Which planet is closest to the sun? A: Mercury.
def mean(values):
    total = 0
    for v in values:
        total += v
    return total / len(values)

print(mean([3, 5, 7, 9]))  # prints 6.0
The old lighthouse keeper told stories every evening. "Long ago," he said, "a storm came so suddenly that the sky turned green. The waves were taller than the church. But the light never went out, not even once." The children listened with wide eyes. Outside, the wind whistled through the trees, and far away a ship's bell rang softly in the dark.
In the end, Mia's boat became the most famous boat in town. Other children asked her to teach them, and soon there was a whole fleet of little boats on the water every Saturday, each one painted a different colour, each one tied with knots that Mia had shown them how to make.`;
