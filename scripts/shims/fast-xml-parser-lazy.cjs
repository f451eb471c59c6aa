'use strict';
// Stands in for `fast-xml-parser` where ipphone's sources import it
// (src/ui/cisco-xml.ts; scripts/bundle.mjs). That module builds its parser
// when it is loaded, which evaluated fast-xml-parser (with is-unsafe,
// path-expression-matcher, @nodable/entities, strnum...) at the start of
// every agent, headless ones included, that never renders a Cisco XML
// screen. Through this file the real package is evaluated, and the real
// parser built with the options given here, on the first parse or validate.
let fxp;
const load = () => (fxp ??= require('../../node_modules/fast-xml-parser/src/fxp.js'));

class XMLParser {
  #options;
  #parser;

  constructor(options) {
    this.#options = options;
  }

  #real() {
    return (this.#parser ??= new (load().XMLParser)(this.#options));
  }

  parse(xml, validationOption) {
    return this.#real().parse(xml, validationOption);
  }

  addEntity(key, value) {
    return this.#real().addEntity(key, value);
  }
}

exports.XMLParser = XMLParser;
exports.XMLValidator = { validate: (xml, options) => load().XMLValidator.validate(xml, options) };
