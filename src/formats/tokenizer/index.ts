// Tokenizers behind one interface (types.ts): llama2.c, GGUF-embedded SentencePiece ('llama')
// and byte-level BPE ('gpt2') vocabularies, and Hugging Face tokenizer.json.
export * from './types.js';
export { Llama2cTokenizer } from './llama2c.js';
export { SpmTokenizer } from './spm.js';
export { BpeTokenizer, byteToUnicode } from './bpe.js';
// HfTokenizer (./hf.js) is not re-exported here: it loads @huggingface/tokenizers, which a GGUF's
// tokenizer does not need; import it from ./hf.js
export { TOKEN_TYPE, SPM_SPACE, spmVocabFromLlama2c, llama2cVocabFromSpm, spmMerges, spmTokenizerFiles, bpeTokenizerFiles, BPE_PRE_TOKENIZERS, type VocabExport, type HfTokenizerFiles } from './vocab.js';
import type { Tokenizer } from './types.js';
import { SpmTokenizer } from './spm.js';
import { BpeTokenizer } from './bpe.js';
import type { VocabExport } from './vocab.js';

/** The tokenizer for a GGUF-style vocabulary. */
export function tokenizerFromVocab(v: VocabExport): Tokenizer {
  return v.model === 'llama' ? new SpmTokenizer(v) : new BpeTokenizer(v);
}
